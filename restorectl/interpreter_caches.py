"""Work that moto's Step Functions interpreter repeats, done once per process or done cheaper.

moto parses a definition with ANTLR when the state machine is created and again at the start of
every execution, and builds a new JSONPath parser (ply tables included) for every path it reads in
every state. None of that depends on the execution, and the test suite runs the same six
definitions hundreds of times: the parse trees and the compiled paths are kept, keyed by their
text. Each execution still gets its own evaluation components (the Preprocessor runs every time),
so nothing an execution holds is shared with the next one.

moto also copies every value a state reads or passes on with `copy.deepcopy`, which keeps a memo of
every node; on the workflows' states (the plan, the checks, the validation report) that was the
interpreter's largest cost. Those values are JSON (parsed from a state's input or a Lambda's
answer), so `copy_json` copies dicts, lists and scalars directly and leaves anything else to
`copy.deepcopy`. Unlike `deepcopy` it does not preserve one object appearing twice in a value as one
object; Step Functions' values are JSON text, where that cannot happen either.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import types
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


_SCALARS = (str, int, float, bool, type(None))


def copy_json(value: Any, memo: Any = None) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: copy_json(item) for key, item in value.items()}
    if kind is list:
        return [copy_json(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value, memo)


# The interpreter's modules that copy the values states pass each other (each does `import copy`).
_COPYING_MODULES = (
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
)


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

    copying = types.SimpleNamespace(deepcopy=copy_json, copy=copy.copy)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(parse)))
        stack.enter_context(mock.patch.object(json_path, "parse", _jsonpath_ext))
        stack.enter_context(mock.patch.object(result_path, "parse", _jsonpath))
        for name in _COPYING_MODULES:
            module = importlib.import_module(name)
            if getattr(module, "copy", None) is copy:  # as moto 5.2 has it; a module that moved keeps deepcopy
                stack.enter_context(mock.patch.object(module, "copy", copying))
        yield
