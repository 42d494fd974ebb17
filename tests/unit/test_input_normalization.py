"""Hostile and malformed input, the same for every workflow's input check (restore, rollback, snapshot).

Each planner is called as its CheckInput step calls it. AWS is out of reach (any client call
fails the test), so a refusal here also proves the value never got as far as RDS or SSM; the
accepted cases reach fakes that record which identifiers were looked up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from restore_runbook.common import aws, fields, rds
from restore_runbook.common.errors import InvalidInput, RestoreTimeOutOfRange
from restore_runbook.hosts import cutover, ssm
from restore_runbook.restore import request as restore_request
from restore_runbook.rollback import procedure
from restore_runbook.settings import RunbookSettings
from restore_runbook.snapshot import snapshots

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"
SETTINGS = RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE})
SNAPSHOT_SETTINGS = snapshots.SnapshotSettings.from_env({})


@pytest.fixture(autouse=True)
def aws_is_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"an input check called AWS ({args}) before refusing or without a fake")

    monkeypatch.setattr(aws, "client", refuse)


def plan_restore(request: Any) -> Any:
    return restore_request.plan_restore(request, SETTINGS)


def plan_rollback(request: Any) -> Any:
    return procedure.plan_rollback(request, SETTINGS)


def plan_snapshot(request: Any) -> Any:
    return snapshots.plan_snapshot(request, SETTINGS, SNAPSHOT_SETTINGS)


# Each workflow's planner, the input that makes a field the one under test, and the field's kind.
PLANNERS: dict[str, Callable[[Any], Any]] = {"restore": plan_restore, "rollback": plan_rollback, "snapshot": plan_snapshot}
BASE = {
    "restore": {"mode": "snapshot"},
    "restore-pitr": {"mode": "point-in-time"},
    "rollback": {"restored_instance": "irisx-copy"},
    "snapshot": {"reason": "manual"},
}
FIELDS_BY_KIND = {
    "rds identifier": [
        ("restore", "source_instance"),
        ("restore", "target_instance"),
        ("rollback", "restored_instance"),
        ("rollback", "source_instance"),
        ("snapshot", "source_instance"),
    ],
    "snapshot identifier": [("restore", "snapshot_id")],
    "host name": [("rollback", "original_endpoint")],
    "timestamp": [("restore-pitr", "restore_time")],
    "free text": [("restore", "requested_by"), ("rollback", "requested_by")],
    "tag text": [("snapshot", "requested_by"), ("snapshot", "label"), ("snapshot", "pipeline_run")],
    "flag": [("restore", "keep_on_failure"), ("restore", "cutover"), ("rollback", "stop_app_first")],
}
REQUIRED = {("rollback", "restored_instance")}

WHITESPACE = "begins or ends with whitespace"
LOOKALIKE = "which only looks like an ASCII character"
NON_EMPTY = "must be a non-empty string"
IDENTIFIER_RULE = fields.RDS_IDENTIFIER_RULE
HOSTILE_IDENTIFIERS = [
    ("irisx-prod-rds-postgres\n", WHITESPACE),
    ("irisx-prod-rds-postgres\r\n", WHITESPACE),
    (" irisx-prod-rds-postgres", WHITESPACE),
    ("irisx-prod-rds-postgres ", WHITESPACE),
    ("\tirisx-prod-rds-postgres", WHITESPACE),
    ("irisx-prod\trds", "control or invisible character U+0009"),
    ("irisx-prod\nrds", "control or invisible character U+000A"),
    ("irisx-prod\x00", "control or invisible character U+0000"),
    ("irisx\u200bprod", "control or invisible character U+200B ZERO WIDTH SPACE"),
    ("irisx\u202eprod", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("irisx prod", "holds whitespace"),
    ("irisx\u00a0prod", "holds whitespace"),
    ("irisx-prod-rds-p\u043estgres", "U+043E CYRILLIC SMALL LETTER O), " + LOOKALIKE),
    ("\u212arisx", "U+212A KELVIN SIGN), " + LOOKALIKE),  # lower-cases to an ASCII "k"
    ("ｉrisx", LOOKALIKE),
    ("irisx..prod", IDENTIFIER_RULE),
    ("irisx--prod", IDENTIFIER_RULE),
    ("irisx-", IDENTIFIER_RULE),
    ("1irisx", IDENTIFIER_RULE),
    ("-irisx", IDENTIFIER_RULE),
    ("irisx_prod", IDENTIFIER_RULE),
    ("irisx;reboot", IDENTIFIER_RULE),
    ("$(reboot)", IDENTIFIER_RULE),
    ("../irisx", IDENTIFIER_RULE),
    ("a" * 64, IDENTIFIER_RULE),
    ("a" * 100_000, IDENTIFIER_RULE),
    ("", NON_EMPTY),
    ("   ", NON_EMPTY),
]
HOSTILE_SNAPSHOT_IDS = [
    *[(value, why) for value, why in HOSTILE_IDENTIFIERS if why != IDENTIFIER_RULE],
    ("irisx..manual", fields.SNAPSHOT_IDENTIFIER_RULE),
    ("rds:", fields.SNAPSHOT_IDENTIFIER_RULE),
    ("rds:rds:irisx", fields.SNAPSHOT_IDENTIFIER_RULE),
    ("arn:aws:rds:us-east-1:1:snapshot:x", fields.SNAPSHOT_IDENTIFIER_RULE),
    ("s" * 256, fields.SNAPSHOT_IDENTIFIER_RULE),
    ("bad id!", "holds whitespace"),
]
HOSTILE_HOSTS = [
    ("irisx-prod.abc.us-east-1.rds.amazonaws.com\n", WHITESPACE),
    (" irisx-prod.example.com", WHITESPACE),
    ("irisx-prod.example.com\t", WHITESPACE),
    ("irisx-prod.example.com;reboot", fields.HOST_NAME_RULE),
    ("irisx-prod.example.com && pm2 stop all", "holds whitespace"),
    ("$(reboot).example.com", fields.HOST_NAME_RULE),
    ("`id`.example.com", fields.HOST_NAME_RULE),
    ("db..example.com", fields.HOST_NAME_RULE),
    ("..", fields.HOST_NAME_RULE),
    (".example.com", fields.HOST_NAME_RULE),
    ("db.example.com.", fields.HOST_NAME_RULE),
    ("-db.example.com", fields.HOST_NAME_RULE),
    ("db-.example.com", fields.HOST_NAME_RULE),
    ("db_host.example.com", fields.HOST_NAME_RULE),
    ("db.example.com:5432", fields.HOST_NAME_RULE),
    ("db/../../etc/passwd", fields.HOST_NAME_RULE),
    ("a" * 64 + ".example.com", fields.HOST_NAME_RULE),
    (".".join(["a" * 60] * 5), fields.HOST_NAME_RULE),  # 304 characters
    ("db\u2024example.com", "U+2024 ONE DOT LEADER), " + LOOKALIKE),
    ("\u0501b.example.com", LOOKALIKE),
    ("", NON_EMPTY),
]
NOT_A_TIMESTAMP = "is not an ISO-8601 UTC timestamp"
HOSTILE_TIMESTAMPS = [
    ("2025-11-02T12:00:00Z\n", WHITESPACE),
    (" 2025-11-02T12:00:00Z", WHITESPACE),
    ("2025-11-02T12:00:00Z ", WHITESPACE),
    ("latest\n", WHITESPACE),
    ("Latest", NOT_A_TIMESTAMP),
    ("2025-11-02T12:00:00", NOT_A_TIMESTAMP),
    ("2025-11-02", NOT_A_TIMESTAMP),
    ("2025-11-02 12:00:00Z", NOT_A_TIMESTAMP),
    ("2025-11-02t12:00:00z", NOT_A_TIMESTAMP),
    ("20251102T120000Z", NOT_A_TIMESTAMP),
    ("2025-11-02T12:00:00.1234567Z", NOT_A_TIMESTAMP),
    ("2025-11-02T12:00:00+0100", NOT_A_TIMESTAMP),
    ("2025-11-02T12:00:00Z;reboot", NOT_A_TIMESTAMP),
    ("２０２５-11-02T12:00:00Z", LOOKALIKE),
    ("2025-02-30T00:00:00Z", "day is out of range for month"),
    ("2025-11-02T25:00:00Z", "hour must be in 0..23"),
    ("2025-11-02T12:00:00+24:00", "offset must be a timedelta"),
    ("9" * 100_000, NOT_A_TIMESTAMP),
    ("", NON_EMPTY),
]
OVERFLOWING_TIMESTAMPS = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:59:59.999999+01:00"]
HOSTILE_FREE_TEXT = [
    ("ana\nbob", "control or invisible character U+000A"),
    ("ana\tbob", "control or invisible character U+0009"),
    ("ana\x1b[2Jbob", "control or invisible character U+001B"),
    ("ana\u202ebob", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("ana\u2028bob", "U+2028 LINE SEPARATOR"),
    ("a" * 257, "is longer than 256 characters (257)"),
    ("a" * 100_000, "is longer than 256 characters (100000)"),
    ("", NON_EMPTY),
    ("   ", NON_EMPTY),
    ("\n", NON_EMPTY),
]
HOSTILE_TAG_TEXT = [
    *HOSTILE_FREE_TEXT,
    ("v2; DROP TABLE", "has characters an RDS tag cannot hold"),
    ("$(reboot)", "has characters an RDS tag cannot hold"),
    ("ana, bob", "has characters an RDS tag cannot hold"),
]
WRONG_TYPES = [7, 1.5, True, ["irisx-copy"], {"value": "irisx-copy"}]
NOT_A_FLAG = ["yes", "true", 1, 0, "", [], {"value": True}]

CASES: list[tuple[str, str, Any, type[Exception], str]] = []
for kind, where in FIELDS_BY_KIND.items():
    for base, name in where:
        hostile = {
            "rds identifier": HOSTILE_IDENTIFIERS,
            "snapshot identifier": HOSTILE_SNAPSHOT_IDS,
            "host name": HOSTILE_HOSTS,
            "timestamp": HOSTILE_TIMESTAMPS,
            "free text": HOSTILE_FREE_TEXT,
            "tag text": HOSTILE_TAG_TEXT,
            "flag": [(value, f"{name} must be true or false") for value in NOT_A_FLAG],
        }[kind]
        CASES += [(base, name, value, InvalidInput, why) for value, why in hostile]
        if kind != "flag":
            CASES += [(base, name, value, InvalidInput, f"{name} must be a non-empty string") for value in WRONG_TYPES]
        if (base.split("-")[0], name) in REQUIRED:
            CASES.append((base, name, None, InvalidInput, f"{name} must be given (the RDS identifier of the restored instance), got null"))
        else:
            CASES.append((base, name, None, InvalidInput, f"{name} is null; leave it out to get the default ("))
CASES += [
    ("restore-pitr", "restore_time", value, RestoreTimeOutOfRange, "lies outside the years 0001-9999") for value in OVERFLOWING_TIMESTAMPS
]


def _id(case: tuple[str, str, Any, type[Exception], str]) -> str:
    base, name, value, _, _ = case
    text = repr(value)
    return f"{base}.{name}={text if len(text) <= 40 else text[:37] + '...'}"


@pytest.mark.parametrize(("base", "name", "value", "error", "why"), CASES, ids=[_id(c) for c in CASES])
def test_a_hostile_or_malformed_field_is_refused_with_a_named_error_before_any_aws_call(base, name, value, error, why):
    # Given a workflow's input that is valid but for one field
    request = {**BASE[base], name: value}

    # When its input check runs, Then it ends in the named error saying what was wrong with that field
    with pytest.raises(error) as caught:
        PLANNERS[base.split("-")[0]](request)
    cause = str(caught.value)
    assert type(caught.value) is error
    assert cause.startswith(name), cause
    assert why in cause, cause
    # And the cause stays readable however large the value was
    assert len(cause) < 800
    if base == "rollback":
        assert cause.endswith("nothing was touched")


@pytest.mark.parametrize(
    ("workflow", "request_", "why"),
    [
        ("restore", None, "must be a JSON object"),
        ("restore", [], "must be a JSON object"),
        ("restore", "snapshot", "must be a JSON object"),
        ("restore", {"mode": None}, "mode must be 'point-in-time' or 'snapshot', got null"),
        ("restore", {"mode": "Snapshot"}, "mode must be 'point-in-time' or 'snapshot', got 'Snapshot'"),
        ("restore", {"mode": "snapshot\n"}, "mode must be 'point-in-time' or 'snapshot', got 'snapshot\\n'"),
        ("restore", {"mode": ["snapshot"]}, "mode must be 'point-in-time' or 'snapshot', got ['snapshot']"),
        ("restore", {"mode": "snapshot", "source_instance\n": SOURCE}, "unknown input field(s) 'source_instance\\n'"),
        ("restore", {"mode": "snapshot", "x" * 5000: 1}, "unknown input field(s) 'xxxxxxxx"),
        ("restore", {"mode": "point-in-time", "snapshot_id": "latest"}, "snapshot_id only applies to mode 'snapshot'"),
        ("restore", {"mode": "snapshot", "restore_time": "latest"}, "restore_time only applies to mode 'point-in-time'"),
        ("rollback", 7, "must be a JSON object"),
        ("rollback", {}, "restored_instance must be given (the RDS identifier of the restored instance), got nothing"),
        ("rollback", {"restored_instance": "irisx-copy", "force": True}, "unknown input field(s) force"),
        ("snapshot", "pre-migration", "must be a JSON object"),
        ("snapshot", {}, "reason must be one of pre-migration, bulk-operation, upgrade, config-change, manual, got null"),
        ("snapshot", {"reason": None}, "reason must be one of pre-migration"),
        ("snapshot", {"reason": "Manual"}, "got 'Manual'"),
        ("snapshot", {"reason": "manual "}, "got 'manual '"),
    ],
)
def test_a_malformed_execution_input_is_refused_before_any_aws_call(workflow, request_, why):
    with pytest.raises(InvalidInput) as caught:
        PLANNERS[workflow](request_)
    assert why in str(caught.value)
    assert len(str(caught.value)) < 800


# ---------------------------------------------------------------------------------------- accepted input


@pytest.fixture
def restore_world(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source (with a window), no other instance, one snapshot of any asked id; returns every identifier RDS was asked about."""
    asked: list[str] = []
    now = datetime.now(timezone.utc)
    source = {"DBInstanceIdentifier": SOURCE, "DBSubnetGroup": {"DBSubnetGroupName": ""}}

    def find_instance(identifier: str) -> Any:
        asked.append(identifier)
        return source if identifier == SOURCE else None

    def find_snapshot(source_id: str, snapshot_id: str) -> Any:
        asked.append(snapshot_id)
        return {"DBSnapshotIdentifier": snapshot_id, "SnapshotCreateTime": now - timedelta(hours=1)}

    monkeypatch.setattr(rds, "find_instance", find_instance)
    monkeypatch.setattr(rds, "restore_window", lambda s: rds.RestoreWindow(earliest=now - timedelta(days=7), latest=now))
    monkeypatch.setattr(rds, "find_snapshot", find_snapshot)
    return asked


def test_mixed_case_identifiers_are_recorded_and_looked_up_in_lower_case_by_restore(restore_world):
    plan = plan_restore(
        {
            "mode": "snapshot",
            "source_instance": "IRISX-Prod-RDS-Postgres",
            "target_instance": "Irisx-COPY",
            "snapshot_id": "RDS:Irisx-Nightly",
        }
    )

    assert (plan.source_instance, plan.target_instance, plan.snapshot_id) == (SOURCE, "irisx-copy", "rds:irisx-nightly")
    assert restore_world == [SOURCE, "irisx-copy", "rds:irisx-nightly"]


def test_a_target_that_differs_from_the_source_only_in_case_is_the_source(restore_world):
    from restore_runbook.common.errors import TargetAlreadyExists

    with pytest.raises(TargetAlreadyExists, match="is the source itself"):
        plan_restore({"mode": "snapshot", "target_instance": SOURCE.upper()})


def test_a_valid_restore_time_with_an_offset_and_fraction_is_kept_exactly_in_utc(restore_world):
    moment = (datetime.now(timezone.utc) - timedelta(days=1)).replace(microsecond=250000)
    text = moment.astimezone(timezone(timedelta(hours=-5))).isoformat()

    plan = plan_restore({"mode": "point-in-time", "restore_time": text, "requested_by": "  on-call: ana  "})

    assert plan.restore_time == moment.strftime("%Y-%m-%dT%H:%M:%S.250000Z")
    assert plan.requested_by == "on-call: ana"


def test_leaving_a_field_out_still_gets_its_default(restore_world):
    plan = plan_restore({"mode": "point-in-time"})

    assert (plan.source_instance, plan.use_latest_restorable_time, plan.keep_on_failure, plan.cutover) == (SOURCE, True, False, False)
    assert plan.requested_by == "not given"


@pytest.fixture
def rollback_world(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A managed copy irisx-copy made from the source, one API host; returns the identifiers looked up."""
    asked: list[str] = []
    tags = [
        {"Key": SETTINGS.management_tag_key, "Value": SETTINGS.management_tag_value},
        {"Key": rds.TAG_SOURCE, "Value": SOURCE.upper()},
    ]
    copy = {"DBInstanceIdentifier": "irisx-copy", "Endpoint": {"Address": "irisx-copy.abc.us-east-1.rds.amazonaws.com"}, "TagList": tags}

    def find_instance(identifier: str) -> Any:
        asked.append(identifier)
        return copy if identifier == "irisx-copy" else None

    monkeypatch.setattr(rds, "find_instance", find_instance)
    monkeypatch.setattr(rds, "all_instances", lambda: iter([copy]))
    monkeypatch.setattr(cutover, "source_endpoint", lambda source: asked.append(source) or f"{source}.ABC.us-east-1.rds.amazonaws.com")
    monkeypatch.setattr(ssm, "find_hosts", lambda settings: ["i-1"])
    monkeypatch.setattr(ssm, "find_stopped_hosts", lambda settings: [])
    return asked


def test_mixed_case_identifiers_and_host_names_are_recorded_in_lower_case_by_rollback(rollback_world):
    plan = plan_rollback(
        {"restored_instance": "IRISX-Copy", "source_instance": "Irisx-Prod-Rds-Postgres", "original_endpoint": "Irisx-Prod.Example.COM"}
    )

    assert (plan["restored_instance"], plan["source_instance"], plan["original_endpoint"]) == (
        "irisx-copy",
        SOURCE,
        "irisx-prod.example.com",
    )
    assert rollback_world == ["irisx-copy"]


def test_the_default_original_endpoint_from_rds_is_checked_and_lower_cased_too(rollback_world):
    plan = plan_rollback({"restored_instance": "irisx-copy"})

    assert plan["original_endpoint"] == f"{SOURCE}.abc.us-east-1.rds.amazonaws.com"
    assert plan["source_instance"] == SOURCE  # from the copy's tag, which spelled it in upper case
    assert plan["requested_by"] == "not given"


def test_an_rds_endpoint_that_is_not_a_host_name_never_reaches_the_hosts(rollback_world, monkeypatch):
    monkeypatch.setattr(cutover, "source_endpoint", lambda source: "irisx-prod.example.com\n")

    with pytest.raises(InvalidInput, match=f"{WHITESPACE}.*nothing was touched"):
        plan_rollback({"restored_instance": "irisx-copy"})


@pytest.mark.parametrize("restored", [SOURCE.upper(), "Irisx-Prod-Rds-Postgres"])
def test_the_source_in_another_case_is_still_the_source_and_never_rolled_back(rollback_world, restored):
    with pytest.raises(InvalidInput, match="is the source instance; the rollback never deletes production"):
        plan_rollback({"restored_instance": restored})
    assert rollback_world == []


def test_a_source_given_in_another_case_than_the_copys_tag_is_the_same_source(rollback_world):
    plan = plan_rollback({"restored_instance": "irisx-copy", "source_instance": SOURCE.upper()})

    assert plan["source_instance"] == SOURCE


def test_the_endpoint_of_the_copy_in_another_case_is_refused_as_the_original(rollback_world):
    with pytest.raises(InvalidInput, match="is the endpoint of the instance being deleted"):
        plan_rollback({"restored_instance": "irisx-copy", "original_endpoint": "IRISX-COPY.abc.us-east-1.rds.amazonaws.com"})


@pytest.fixture
def snapshot_world(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(rds, "describe_source", lambda identifier: asked.append(identifier) or {"DBInstanceStatus": "available"})
    monkeypatch.setattr(rds, "snapshot_named", lambda snapshot_id: None)
    return asked


def test_mixed_case_source_is_recorded_and_tagged_in_lower_case_by_snapshot(snapshot_world):
    plan = plan_snapshot({"reason": "manual", "source_instance": "IRISX-PROD-RDS-POSTGRES", "label": " before v2 "})

    assert plan.source_instance == SOURCE
    assert plan.label == "before v2"
    assert snapshot_world == [SOURCE]
    tags = {t["Key"]: t["Value"] for t in snapshots.snapshot_tags(plan, "exec-1", SETTINGS)}
    assert tags[rds.TAG_SOURCE] == SOURCE


def test_a_mixed_case_configured_source_is_used_in_lower_case(snapshot_world):
    settings = RunbookSettings.from_env({"SOURCE_INSTANCE": "IRISX-Prod-RDS-Postgres"})

    plan = snapshots.plan_snapshot({"reason": "manual"}, settings, SNAPSHOT_SETTINGS)

    assert plan.source_instance == SOURCE


# ---------------------------------------------------------------------------------------- the patterns themselves


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        (fields.RDS_IDENTIFIER, "irisx\n"),
        (fields.SNAPSHOT_IDENTIFIER, "irisx\n"),
        (fields.HOST_NAME, "irisx.example.com\n"),
        (fields.TIMESTAMP, "2025-11-02T12:00:00Z\n"),
        (fields.TAG_VALUE, "ana\n"),
    ],
)
def test_no_pattern_accepts_a_final_newline(pattern, value):
    # `re.match` with a `$`-anchored pattern would; the checkers use fullmatch
    assert pattern.fullmatch(value) is None
    assert pattern.fullmatch(value.rstrip("\n")) is not None


@pytest.mark.parametrize(
    ("name", "value"), [("source_instance", f"{SOURCE}\n"), ("database_name", "irisx\n"), ("recency_column", "created_at\n")]
)
def test_settings_with_a_final_newline_are_refused(name, value):
    with pytest.raises(InvalidInput):
        dataclasses.replace(SETTINGS, **{name: value})


def test_a_snapshot_prefix_with_a_final_newline_is_refused():
    with pytest.raises(InvalidInput, match="SNAPSHOT_PREFIX"):
        snapshots.SnapshotSettings.from_env({"SNAPSHOT_PREFIX": "irisx\n"})
