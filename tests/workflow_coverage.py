"""pytest plugin: record every rehearsed execution's history, and print the workflow coverage at the end.

The harness appends one JSON line per finished execution to the file named in its
REHEARSAL_HISTORY_LOG (subprocesses such as `python -m restorectl rehearse` inherit it). This
session writes to a file of its own (its pytest-xdist workers append to the same one) and, when
it recorded anything, replaces
build/workflow-coverage/executions.jsonl with it, so a run of only the unit tests never wipes the
last workflow run's report; `python scripts/workflow_coverage.py` re-reads that file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from restorectl.harness import HISTORY_LOG_ENV

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "workflow_coverage.py"
_session_log = pytest.StashKey[Path]()


def coverage_script() -> ModuleType:
    """scripts/workflow_coverage.py, loaded by path: `scripts` is not a package, and a site package may use the name."""
    name = "workflow_coverage_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-coverage-verbose",
        action="store_true",
        default=False,
        help="with the workflow coverage report, list which tests covered each state, Catch edge and Choice branch",
    )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") and os.environ.get(HISTORY_LOG_ENV):
        # A pytest-xdist worker: it appends to the log the controlling session opened (inherited
        # through the environment), and the controller alone reports and keeps it.
        return
    final = coverage_script().DEFAULT_LOG
    final.parent.mkdir(parents=True, exist_ok=True)
    session_log = final.with_name(f"executions.{os.getpid()}.jsonl")
    session_log.write_text("")
    config.stash[_session_log] = session_log
    os.environ[HISTORY_LOG_ENV] = str(session_log)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    session_log = config.stash.get(_session_log, None)
    if session_log is None or not session_log.exists() or not session_log.read_text().strip():
        return
    script = coverage_script()
    final = _keep(session_log, script.DEFAULT_LOG)
    report = script.render(script.read_log(final, script.load_definitions()), verbose=config.getoption("--workflow-coverage-verbose"))
    terminalreporter.section("workflow coverage")
    terminalreporter.write_line(report)
    terminalreporter.write_line(f"(from {final.relative_to(ROOT)}; python scripts/workflow_coverage.py --verbose lists the tests per edge)")


def pytest_unconfigure(config: pytest.Config) -> None:
    session_log = config.stash.get(_session_log, None)
    os.environ.pop(HISTORY_LOG_ENV, None)
    if session_log is not None and session_log.exists():
        if session_log.read_text().strip():
            _keep(session_log, coverage_script().DEFAULT_LOG)
        else:
            session_log.unlink()


def _keep(session_log: Path, final: Path) -> Path:
    session_log.replace(final)
    return final
