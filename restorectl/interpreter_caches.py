"""Parsing that moto's Step Functions interpreter repeats, done once per process.

moto parses a definition with ANTLR when the state machine is created and again at the start of
every execution, and builds a new JSONPath parser (ply tables included) for every path it reads in
every state. None of that depends on the execution, and the test suite runs the same six
definitions hundreds of times: the parse trees and the compiled paths are kept, keyed by their
text. Each execution still gets its own evaluation components (the Preprocessor runs every time),
so nothing an execution holds is shared with the next one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock


@functools.lru_cache(maxsize=64)
def _parse_tree(definition: str, moto_parse: Callable[[str], tuple[Any, Any]]) -> Any:
    # moto's own parse, syntax errors and all (lru_cache keeps nothing for a call that raised); only its tree is kept.
    return moto_parse(definition)[1]


@functools.lru_cache(maxsize=4096)
def _jsonpath_ext(path: str) -> Any:
    from jsonpath_ng.ext import parse  # type: ignore[attr-defined]

    return parse(path)


@functools.lru_cache(maxsize=4096)
def _jsonpath(path: str) -> Any:
    from jsonpath_ng import parse  # type: ignore[attr-defined]

    return parse(path)


@contextlib.contextmanager
def installed() -> Iterator[None]:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.asl.utils import json_path

    moto_parse = AmazonStateLanguageParser.parse

    def parse(definition: str) -> tuple[Any, Any]:
        """What moto's parse returns: fresh evaluation components over a kept parse tree."""
        tree = _parse_tree(definition, moto_parse)
        return Preprocessor().visit(tree), tree

    with (
        mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(parse)),
        mock.patch.object(json_path, "parse", _jsonpath_ext),
        mock.patch.object(result_path, "parse", _jsonpath),
    ):
        yield
