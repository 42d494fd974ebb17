"""The interpreter's copies of the values states pass each other (restorectl/interpreter_caches.py):
independent of the original like copy.deepcopy's, and in effect only while a rehearsal is open."""

from __future__ import annotations

import copy
import importlib
from datetime import datetime, timezone

import pytest

from restorectl import interpreter_caches
from restorectl.interpreter_caches import copy_json

pytestmark = pytest.mark.unit


def test_a_copied_value_shares_no_container_with_the_original():
    original = {"plan": {"hosts": ["i-1", "i-2"], "checks": [{"ok": True, "rows": 3, "ratio": 0.5, "note": None}]}}
    copied = copy_json(original)
    assert copied == original
    copied["plan"]["hosts"].append("i-3")
    copied["plan"]["checks"][0]["ok"] = False
    assert original == {"plan": {"hosts": ["i-1", "i-2"], "checks": [{"ok": True, "rows": 3, "ratio": 0.5, "note": None}]}}


def test_what_is_not_json_is_left_to_deepcopy():
    class Mutable:
        def __init__(self) -> None:
            self.items = [1]

    moment = datetime(2026, 12, 3, tzinfo=timezone.utc)
    original = {"at": moment, "held": Mutable(), "pair": (1, [2])}
    copied = copy_json(original)
    assert copied["at"] == moment
    assert copied["held"] is not original["held"] and copied["held"].items == [1]
    copied["pair"][1].append(3)
    assert original["pair"] == (1, [2])


def test_the_interpreters_modules_copy_with_it_only_while_installed():
    modules = [importlib.import_module(name) for name in interpreter_caches._COPYING_MODULES]
    assert all(module.copy is copy for module in modules), "each still does `import copy` as moto 5.2 does"
    with interpreter_caches.installed():
        assert all(module.copy.deepcopy is copy_json for module in modules)
    assert all(module.copy is copy for module in modules)
