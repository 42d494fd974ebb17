"""A drill's copy is marked as one, and nothing that serves production may use it: cutover and rollback refuse it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from restore_runbook.common import rds
from restore_runbook.common.errors import CutoverFailed, InvalidInput
from restore_runbook.hosts import cutover, ssm
from restore_runbook.restore.instance import management_tags
from restore_runbook.restore.request import RestorePlan
from restore_runbook.rollback import procedure
from restore_runbook.settings import RunbookSettings

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"
SETTINGS = RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE})
PLAN = RestorePlan(
    mode="point-in-time",
    source_instance=SOURCE,
    target_instance=f"{SOURCE}-drill-20251202-100000",
    restore_time=None,
    use_latest_restorable_time=True,
    snapshot_id=None,
    restore_point="2025-12-02T09:55:00Z",
    keep_on_failure=False,
    requested_by="schedule",
    checked_at="2025-12-02T10:00:00Z",
)
DRILL_COPY = {
    "DBInstanceIdentifier": PLAN.target_instance,
    "Endpoint": {"Address": "drill.example", "Port": 5432},
    "TagList": [
        {"Key": SETTINGS.management_tag_key, "Value": SETTINGS.management_tag_value},
        {"Key": rds.TAG_PURPOSE, "Value": rds.PURPOSE_DRILL},
        {"Key": rds.TAG_SOURCE, "Value": SOURCE},
    ],
}


def test_a_drill_plan_tags_its_copy_as_a_drill_and_a_restore_plan_does_not():
    drill_tags = {t["Key"]: t["Value"] for t in management_tags(replace(PLAN, purpose="drill"), "exec", SETTINGS)}
    restore_tags = {t["Key"]: t["Value"] for t in management_tags(PLAN, "exec", SETTINGS)}
    assert drill_tags[rds.TAG_PURPOSE] == "drill" and drill_tags[rds.TAG_WORKFLOW] == "drill"
    assert rds.TAG_PURPOSE not in restore_tags and restore_tags[rds.TAG_WORKFLOW] == "restore"
    assert drill_tags[SETTINGS.management_tag_key] == SETTINGS.management_tag_value
    # A plan from before the field existed (an execution in flight at deployment) is a restore's.
    assert RestorePlan.from_state({k: v for k, v in PLAN.to_state().items() if k != "purpose"}).purpose is None


@pytest.mark.parametrize("marked_by", ["plan", "tag"])
def test_a_cutover_to_a_drill_copy_is_refused_before_any_host_is_touched(monkeypatch, marked_by):
    plan = {**PLAN.to_state(), "purpose": "drill" if marked_by == "plan" else "restore"}
    monkeypatch.setattr(rds, "find_instance", lambda identifier: DRILL_COPY if identifier == PLAN.target_instance else None)
    monkeypatch.setattr(ssm, "find_hosts", lambda settings: pytest.fail("no host may be looked for"))
    monkeypatch.setattr(ssm, "find_sent_command", lambda *a: pytest.fail("no command may be looked for"))

    with pytest.raises(CutoverFailed, match=r"drill's temporary copy .* never a cutover target\. No host was changed"):
        cutover.start_cutover(plan, {"endpoint": {"address": "drill.example"}}, "exec", SETTINGS)


def test_a_rollback_of_a_drill_copy_is_refused_before_anything_is_touched(monkeypatch):
    monkeypatch.setattr(rds, "find_instance", lambda identifier: DRILL_COPY if identifier == PLAN.target_instance else None)
    monkeypatch.setattr(ssm, "find_hosts", lambda settings: pytest.fail("no host may be looked for"))

    with pytest.raises(InvalidInput, match=r"is a drill's temporary copy.*Nothing was touched"):
        procedure.plan_rollback({"restored_instance": PLAN.target_instance}, SETTINGS)


def test_a_copy_inherits_the_sources_own_tags_and_none_of_the_tools():
    source = {
        "TagList": [
            {"Key": "team", "Value": "voice"},
            {"Key": "aws:cloudformation:stack-name", "Value": "irisx"},
            {"Key": SETTINGS.management_tag_key, "Value": SETTINGS.management_tag_value},
            {"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION},
            {"Key": rds.TAG_PURPOSE, "Value": rds.PURPOSE_DRILL},
            {"Key": "irisx-restore:swapped-at", "Value": "2025-11-01T00:00:00Z"},
        ]
    }
    assert rds.copied_tags(source, management_tag_key=SETTINGS.management_tag_key) == [{"Key": "team", "Value": "voice"}]
    # A management tag key outside the tool's prefix (a setting) is left behind too.
    custom = {"TagList": [{"Key": "owner-tool", "Value": "x"}, {"Key": "team", "Value": "voice"}]}
    assert rds.copied_tags(custom, management_tag_key="owner-tool") == [{"Key": "team", "Value": "voice"}]


def test_every_tag_the_tool_writes_starts_with_its_prefix_so_none_is_copied():
    from restore_runbook import contract

    written = {name: value for name, value in vars(contract).items() if name.startswith("TAG_") and isinstance(value, str)}
    assert written and all(value.startswith(contract.TOOL_TAG_PREFIX) for value in written.values()), written
    assert contract.DEFAULT_MANAGEMENT_TAG_KEY.startswith(contract.TOOL_TAG_PREFIX)
