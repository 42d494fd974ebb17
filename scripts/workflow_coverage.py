"""Which states, Catch edges and Choice branches of each workflow the test suite executed.

    python scripts/workflow_coverage.py [--verbose] [LOG]

LOG is the JSON-lines file the rehearsal harness writes when REHEARSAL_HISTORY_LOG is set (the
test suite sets it; default build/workflow-coverage/executions.jsonl): one line per execution,
{"workflow", "test", "events"} (and "map_children_histories" where a Distributed Map ran), events
reduced to type, state name, error and a Choice's input.
Standard library only, so it runs anywhere the ASL files are.

What counts, per workflow (statemachines/<workflow>.asl.json):
- a state: entered at least once (any `<Type>StateEntered` event naming it);
- a Catch edge (state, catcher index): a visit of the state ended in a failure event (the last of
  its `*Failed` / `*TimedOut` events came after its last `*Succeeded` event, so a failure that a
  Retry recovered from does not count), and the next state entered is that catcher's `Next`. The
  catcher is the first whose ErrorEquals matches the error, as Step Functions picks it; the
  failure is what tells a catch from the normal `Next`, which matters where both lead to the same
  state (RecordFailure's Next and its catcher's Next are both the Fail state);
- a Choice branch (Choices[i] or Default): the state entered after the Choice is that branch's
  `Next`. When several branches share a target, the rules are evaluated on the Choice's input
  (first match wins, then Default); a visit that still cannot be told apart is reported, not
  guessed.

Edges are read from the order of events, which is exact for a flow of top-level states. A
Distributed Map's child is an execution of its own in AWS; the harness logs each child's own
history (`map_children_histories`: {"map", "index", "events"} per child, recorded by
restorectl/emulated_map_children.py from moto's own evaluation of the child) and each is read as
a flow of its own within that Map's ItemProcessor, so child states, Choice branches and Catch
edges are measured exactly as the parent's are. Inside Parallel branches and inline Map
iterations events interleave in the parent's history, so there only states are counted and their
edges are listed as not measured. A transition that fits no edge is reported as unexplained, and
so is a child state outside its Map's ItemProcessor.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATEMACHINES = ROOT / "statemachines"
DEFAULT_LOG = ROOT / "build" / "workflow-coverage" / "executions.jsonl"

FAILURE_EVENTS = frozenset(
    {
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "ActivityFailed",
        "ActivityTimedOut",
        "ParallelStateFailed",
        "MapStateFailed",
    }
)
SUCCESS_EVENTS = frozenset({"LambdaFunctionSucceeded", "TaskSucceeded", "ActivitySucceeded", "ParallelStateSucceeded", "MapStateSucceeded"})
TIMED_OUT_EVENTS = frozenset({"LambdaFunctionTimedOut", "TaskTimedOut", "ActivityTimedOut"})


# ---------------------------------------------------------------------------------------- the definition


@dataclass
class Definition:
    """What can be covered in one workflow: every state, Catch edge and Choice branch."""

    states: dict[str, dict[str, Any]]
    top_level: set[str]
    catches: list[tuple[str, int]]
    branches: list[tuple[str, int | str]]
    # The nested state's scope: every state of the same Parallel branch or Map iteration, by name.
    scope_of: dict[str, frozenset[str]] = field(default_factory=dict)
    # A Distributed Map's name -> its ItemProcessor's states: each child's own history is a flow of these.
    child_scopes: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_asl(cls, asl: dict[str, Any]) -> Definition:
        states: dict[str, dict[str, Any]] = {}
        scope_of: dict[str, frozenset[str]] = {}
        child_scopes: dict[str, frozenset[str]] = {}

        def collect(scope: dict[str, Any], nested: bool = False) -> None:
            for name, state in scope.items():
                states[name] = state
                if nested:
                    scope_of[name] = frozenset(scope)
                for branch in state.get("Branches", []):
                    collect(branch["States"], nested=True)
                for key in ("Iterator", "ItemProcessor"):
                    if key in state:
                        collect(state[key]["States"], nested=True)
                        if state[key].get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                            child_scopes[name] = frozenset(state[key]["States"])

        collect(asl["States"])
        catches = [(name, i) for name, s in states.items() for i in range(len(s.get("Catch", [])))]
        branches: list[tuple[str, int | str]] = []
        for name, state in states.items():
            if state.get("Type") == "Choice":
                branches += [(name, i) for i in range(len(state.get("Choices", [])))]
                if "Default" in state:
                    branches.append((name, "Default"))
        return cls(
            states=states,
            top_level=set(asl["States"]),
            catches=catches,
            branches=branches,
            scope_of=scope_of,
            child_scopes=child_scopes,
        )

    def flows(self) -> set[str]:
        """The states whose edges a history shows in order: the top level and every Distributed Map child's."""
        return self.top_level.union(*self.child_scopes.values())

    def catch_label(self, edge: tuple[str, int]) -> str:
        name, index = edge
        catcher = self.states[name]["Catch"][index]
        return f"{name} -[{', '.join(catcher['ErrorEquals'])}]-> {catcher['Next']}"

    def branch_label(self, edge: tuple[str, int | str]) -> str:
        name, which = edge
        state = self.states[name]
        target = state["Default"] if which == "Default" else state["Choices"][which]["Next"]
        return f"{name}.{'Default' if which == 'Default' else f'Choices[{which}]'} -> {target}"


def load_definitions(directory: Path = STATEMACHINES) -> dict[str, Definition]:
    return {
        path.name.removesuffix(".asl.json"): Definition.from_asl(json.loads(path.read_text()))
        for path in sorted(directory.glob("*.asl.json"))
    }


# ---------------------------------------------------------------------------------------- Choice rules


class Undecidable(Exception):
    """A rule this evaluator does not model; the caller falls back to the observed target."""


def _path_value(data: Any, path: str) -> tuple[bool, Any]:
    """A reference path ($.a.b[0]) into data: (present, value)."""
    if path == "$":
        return True, data
    if not path.startswith("$"):
        raise Undecidable(path)
    value = data
    for part in path[1:].replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            if not part.endswith("]") or not part[1:-1].isdigit():
                raise Undecidable(path)
            index = int(part[1:-1])
            if not isinstance(value, list) or index >= len(value):
                return False, None
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return True, value


def _glob(pattern: str) -> re.Pattern[str]:
    """StringMatches: `*` is any run of characters, `\\*` a literal star, `\\\\` a literal backslash."""
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _compare(operator: str, left: Any, right: Any) -> bool:
    base = operator.removesuffix("Path")
    kind = next((k for k in ("String", "Numeric", "Boolean", "Timestamp") if base.startswith(k)), None)
    relation = base[len(kind) :] if kind else ""
    if kind == "String" and relation == "Matches":
        return isinstance(left, str) and isinstance(right, str) and _glob(right).fullmatch(left) is not None
    expected_type = {"String": str, "Timestamp": str, "Boolean": bool, "Numeric": (int, float)}.get(kind or "")
    if expected_type is None or not isinstance(left, expected_type) or not isinstance(right, expected_type):
        return False
    if kind == "Numeric" and (isinstance(left, bool) or isinstance(right, bool)):
        return False
    if kind == "Timestamp":
        raise Undecidable(operator)
    relations = {
        "Equals": lambda a, b: a == b,
        "LessThan": lambda a, b: a < b,
        "GreaterThan": lambda a, b: a > b,
        "LessThanEquals": lambda a, b: a <= b,
        "GreaterThanEquals": lambda a, b: a >= b,
    }
    if relation not in relations:
        raise Undecidable(operator)
    return bool(relations[relation](left, right))


def rule_matches(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(rule_matches(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(rule_matches(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not rule_matches(rule["Not"], data)
    if "Variable" not in rule:
        raise Undecidable(str(rule))
    present, value = _path_value(data, rule["Variable"])
    operators = [k for k in rule if k not in ("Variable", "Next", "Comment")]
    if len(operators) != 1:
        raise Undecidable(str(rule))
    operator = operators[0]
    operand = rule[operator]
    if operator == "IsPresent":
        return present is bool(operand)
    if not present:
        return False
    checks = {
        "IsNull": lambda v: v is None,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsNumeric": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }
    if operator in checks:
        return checks[operator](value) is bool(operand)
    if operator.endswith("Path"):
        found, operand = _path_value(data, operand)
        if not found:
            return False
    return _compare(operator, value, operand)


# ---------------------------------------------------------------------------------------- one execution


def error_matches(error_equals: list[str], error: str | None) -> bool:
    if "States.ALL" in error_equals:
        return True
    if error is None:
        return False
    return error in error_equals or ("States.TaskFailed" in error_equals and error != "States.Timeout")


@dataclass
class Observed:
    states: set[str] = field(default_factory=set)
    catches: set[tuple[str, int]] = field(default_factory=set)
    branches: set[tuple[str, int | str]] = field(default_factory=set)
    unexplained: list[str] = field(default_factory=list)


def _catch_taken(state: dict[str, Any], name: str, error: str | None, entered: str) -> tuple[str, int] | None:
    catchers = state.get("Catch", [])
    first = next((i for i, c in enumerate(catchers) if error_matches(c["ErrorEquals"], error)), None)
    if first is not None and catchers[first]["Next"] == entered:
        return (name, first)
    by_target = [i for i, c in enumerate(catchers) if c["Next"] == entered]
    return (name, by_target[0]) if len(by_target) == 1 else None


def _branch_taken(state: dict[str, Any], name: str, choice_input: Any, entered: str) -> tuple[str, int | str] | None:
    choices = state.get("Choices", [])
    candidates: list[int | str] = [i for i, rule in enumerate(choices) if rule.get("Next") == entered]
    if state.get("Default") == entered:
        candidates.append("Default")
    if len(candidates) == 1:
        return (name, candidates[0])
    if not candidates:
        return None
    try:
        data = json.loads(choice_input) if isinstance(choice_input, str) else choice_input
        matched: int | str = next((i for i, rule in enumerate(choices) if rule_matches(rule, data)), "Default")
    except (Undecidable, ValueError, TypeError):
        return None
    return (name, matched) if matched in candidates else None


def observe(definition: Definition, events: Iterable[dict[str, Any]], flow: frozenset[str] | set[str] | None = None) -> Observed:
    """The states entered and the Catch edges and Choice branches taken in one history.

    `flow` is the set of states whose transitions the history shows in order: the top level for an
    execution, a Distributed Map's ItemProcessor for one of its children.
    """
    flow = definition.top_level if flow is None else flow
    seen = Observed()
    visit: dict[str, Any] | None = None  # the state of the flow being executed and how its work ended
    for event in events:
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            name = event.get("name")
            if name not in definition.states:
                seen.unexplained.append(f"entered {name!r}, which the definition does not have")
                continue
            seen.states.add(name)
            if name not in flow:
                continue
            if visit is not None:
                _transition(definition, visit, name, seen)
            visit = {"name": name, "failed": False, "error": None, "input": event.get("input")}
        elif visit is not None and kind in FAILURE_EVENTS:
            visit["failed"] = True
            visit["error"] = "States.Timeout" if kind in TIMED_OUT_EVENTS else event.get("error")
        elif visit is not None and kind in SUCCESS_EVENTS:
            visit["failed"], visit["error"] = False, None
    return seen


def observe_child(definition: Definition, map_state: str, events: Iterable[dict[str, Any]]) -> Observed:
    """One Distributed Map child's own history, read as a flow of its Map's ItemProcessor."""
    scope = definition.child_scopes.get(map_state)
    if scope is None:
        seen = Observed()
        seen.unexplained.append(f"a Map child of {map_state!r}, which is not a Distributed Map of the definition")
        return seen
    events = list(events)
    seen = observe(definition, events, flow=scope)
    for event in events:
        name = event.get("name")
        if event.get("type", "").endswith("StateEntered") and name in definition.states and name not in scope:
            seen.unexplained.append(f"a child of {map_state} entered {name!r}, which is not in its ItemProcessor")
    return seen


def _transition(definition: Definition, visit: dict[str, Any], entered: str, seen: Observed) -> None:
    name = visit["name"]
    state = definition.states[name]
    if visit["failed"]:
        edge = _catch_taken(state, name, visit["error"], entered)
        if edge is None:
            seen.unexplained.append(f"{name} failed with {visit['error']} and then {entered} was entered, which no catcher names")
        else:
            seen.catches.add(edge)
    elif state.get("Type") == "Choice":
        branch = _branch_taken(state, name, visit["input"], entered)
        if branch is None:
            seen.unexplained.append(f"{name} went to {entered}, and which of its branches led there could not be told")
        else:
            seen.branches.add(branch)
    elif state.get("Next") != entered:
        seen.unexplained.append(f"{name} went to {entered}, which is not its Next {state.get('Next')!r}")


# ---------------------------------------------------------------------------------------- the report


@dataclass
class WorkflowCoverage:
    definition: Definition
    executions: int = 0
    states: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    catches: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    branches: dict[tuple[str, int | str], set[str]] = field(default_factory=lambda: defaultdict(set))
    unexplained: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, test: str, events: list[dict[str, Any]], children: list[dict[str, Any]] | None = None) -> None:
        self.executions += 1
        observed = [observe(self.definition, events)]
        observed += [observe_child(self.definition, str(child.get("map")), child.get("events", [])) for child in children or []]
        for seen in observed:
            for name in seen.states:
                self.states[name].add(test)
            for edge in seen.catches:
                self.catches[edge].add(test)
            for branch in seen.branches:
                self.branches[branch].add(test)
            for text in seen.unexplained:
                self.unexplained[text].add(test)

    def not_measured(self) -> list[str]:
        """Edges inside Parallel branches and inline Maps, whose events interleave in the parent's history."""
        interleaved = set(self.definition.states) - self.definition.flows()
        catches = [self.definition.catch_label(e) for e in self.definition.catches if e[0] in interleaved and e not in self.catches]
        branches = [self.definition.branch_label(b) for b in self.definition.branches if b[0] in interleaved and b not in self.branches]
        return catches + branches


def read_log(path: Path, definitions: dict[str, Definition]) -> dict[str, WorkflowCoverage]:
    coverage = {name: WorkflowCoverage(definition) for name, definition in definitions.items()}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("workflow") in coverage:
                coverage[record["workflow"]].add(
                    record.get("test") or "(outside pytest)", record.get("events", []), record.get("map_children_histories")
                )
    return coverage


def _ratio(covered: int, total: int) -> str:
    if total == 0:
        return "-"
    return f"{covered}/{total} {round(100 * covered / total):>3}%"


def _tests(tests: set[str], limit: int | None = None) -> str:
    names = sorted(tests)
    shown = names if limit is None else names[:limit]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def render(coverage: dict[str, WorkflowCoverage], *, verbose: bool = False) -> str:
    total = sum(c.executions for c in coverage.values())
    lines = [f"Workflow coverage from {total} execution(s) (states entered, Catch edges and Choice branches taken)", ""]
    lines.append(f"{'workflow':<20} {'executions':>10}  {'states':<14} {'Catch edges':<14} Choice branches")
    for name, c in coverage.items():
        d = c.definition
        lines.append(
            f"{name:<20} {c.executions:>10}  {_ratio(len(c.states), len(d.states)):<14} "
            f"{_ratio(len(c.catches), len(d.catches)):<14} {_ratio(len(c.branches), len(d.branches))}"
        )
    for name, c in coverage.items():
        d = c.definition
        missing_states = [s for s in d.states if s not in c.states]
        missing_catches = [d.catch_label(e) for e in d.catches if e not in c.catches]
        missing_branches = [d.branch_label(b) for b in d.branches if b not in c.branches]
        if not (missing_states or missing_catches or missing_branches or c.unexplained or verbose):
            continue
        if not c.executions:
            lines += ["", f"{name}: not executed by any test in this run"]
            continue
        lines += ["", f"{name}:"]
        if missing_states:
            lines.append(f"  states never entered: {', '.join(missing_states)}")
        for title, missing in (("Catch edges never taken", missing_catches), ("Choice branches never taken", missing_branches)):
            if missing:
                lines.append(f"  {title}:")
                lines += [f"    {label}" for label in missing]
        if c.not_measured():
            lines.append(f"  not measured (inside a Parallel branch or an inline Map, events interleave): {', '.join(c.not_measured())}")
        for text, tests in sorted(c.unexplained.items()):
            lines.append(f"  unexplained: {text} (in {_tests(tests, 3)})")
        if verbose:
            lines.append("  covered by:")
            lines += [f"    state {s}: {_tests(c.states[s])}" for s in d.states if s in c.states]
            lines += [f"    catch {d.catch_label(e)}: {_tests(c.catches[e])}" for e in d.catches if e in c.catches]
            lines += [f"    choice {d.branch_label(b)}: {_tests(c.branches[b])}" for b in d.branches if b in c.branches]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", nargs="?", type=Path, default=DEFAULT_LOG, help=f"the executions log (default: {DEFAULT_LOG})")
    parser.add_argument("--verbose", action="store_true", help="also list which tests covered each state and edge")
    args = parser.parse_args(argv)
    if not args.log.exists():
        print(f"no executions log at {args.log}; run the workflow tests first (make coverage)", file=sys.stderr)
        return 1
    print(render(read_log(args.log, load_definitions()), verbose=args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
