"""Dedupe on scheduled_time, the teardown's guards, and the daily sweep, against moto's DynamoDB and RDS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import TeardownFailed, UnsafeOperation
from restore_runbook.drill import request as drill
from restore_runbook.drill import sweep, teardown
from restore_runbook.journal import table as journal
from restore_runbook.settings import RunbookSettings

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"
MANAGED = {"Key": "irisx-restore:managed-by", "Value": "restore-runbook"}
DRILL = {"Key": rds.TAG_PURPOSE, "Value": rds.PURPOSE_DRILL}
ME = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-drill:me"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    from restorectl.emulated_journal import table_definition

    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.client.cache_clear()
    with mock_aws():
        import boto3

        boto3.client("dynamodb").create_table(**table_definition("journal"))
        yield boto3.client("rds")
    getattr(aws.client, "cache_clear", lambda: None)()  # a test may have replaced the client factory


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE, **overrides})


def make_instance(client: Any, name: str, tags: list[dict[str, str]]) -> None:
    client.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="postgres",
        MasterUserPassword="not-a-secret",
        Tags=tags,
    )


def names(client: Any) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in client.describe_db_instances()["DBInstances"])


class TestDedupe:
    def test_the_first_start_claims_the_scheduled_time_a_retry_of_its_step_too_and_another_execution_is_told_who_has_it(self, world):
        journal_settings = journal.JournalSettings(table_name="journal", topic_arn="")
        assert drill.claim_scheduled_time(SOURCE, "2025-12-02T10:00:00Z", ME, journal_settings) is None
        assert drill.claim_scheduled_time(SOURCE, "2025-12-02T10:00:00Z", ME, journal_settings) is None  # the step retried
        other = ME.replace(":me", ":retry")
        assert drill.claim_scheduled_time(SOURCE, "2025-12-02T10:00:00Z", other, journal_settings) == ME
        # Another month, or another source at the same time, is another drill.
        assert drill.claim_scheduled_time(SOURCE, "2026-01-06T10:00:00Z", other, journal_settings) is None
        assert drill.claim_scheduled_time("irisx-other", "2025-12-02T10:00:00Z", other, journal_settings) is None

    def test_a_duplicate_start_ends_at_once_saying_which_execution_has_the_drill_and_touches_no_rds(self, world, monkeypatch):
        journal_settings = journal.JournalSettings(table_name="journal", topic_arn="")
        drill.claim_scheduled_time(SOURCE, "2025-12-02T10:00:00Z", ME, journal_settings)
        monkeypatch.setattr(rds, "describe_source", lambda _id: pytest.fail("a duplicate must not look at RDS"))

        result = drill.plan_drill({"scheduled_time": "2025-12-02T10:00:00Z"}, ME + "2", settings(), journal_settings)

        assert result["duplicate_of"] == ME
        assert "already started as execution me" in result["message"] and "did nothing" in result["message"]


class TestTeardownGuards:
    @pytest.mark.parametrize(
        ("name", "tags", "message"),
        [
            (SOURCE, [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": ME}], "it is the source instance"),
            ("irisx-hand-made", [DRILL, {"Key": rds.TAG_EXECUTION, "Value": ME}], "this tool did not create it"),
            ("irisx-a-restore", [MANAGED, {"Key": rds.TAG_EXECUTION, "Value": ME}], "no drill's copy"),
            ("irisx-other-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "another"}], "not by this drill"),
            (
                "irisx-drill-made-production",
                [MANAGED, DRILL, {"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION}, {"Key": rds.TAG_EXECUTION, "Value": ME}],
                "serves or served production",
            ),
        ],
    )
    def test_the_teardown_refuses_anything_but_its_own_drill_copy_and_deletes_nothing(self, world, name, tags, message):
        make_instance(world, name, tags)

        with pytest.raises(UnsafeOperation, match=message):
            teardown.tear_down({"target_instance": name, "source_instance": SOURCE}, None, ME, settings())

        assert name in names(world)

    def test_its_own_copy_is_deleted_without_final_snapshot_and_with_its_backups_then_reported_gone(self, world, monkeypatch):
        make_instance(world, "irisx-drill-copy", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": ME}])
        calls: list[dict[str, Any]] = []
        real = aws.client("rds")
        monkeypatch.setattr(aws, "client", lambda service: _Recording(real, calls) if service == "rds" else None)
        plan = {"target_instance": "irisx-drill-copy", "source_instance": SOURCE}

        first = teardown.tear_down(plan, None, ME, settings())
        second = teardown.tear_down(plan, first, ME, settings())

        assert first["state"] == "pending" and "deletion of irisx-drill-copy started" in first["detail"]
        assert [c for c in calls if c["op"] == "delete_db_instance"] == [
            {
                "op": "delete_db_instance",
                "DBInstanceIdentifier": "irisx-drill-copy",
                "SkipFinalSnapshot": True,
                "DeleteAutomatedBackups": True,
            }
        ]
        assert second["state"] == "done" and second["detail"] == "irisx-drill-copy deleted"
        assert second["started_at"] == first["started_at"] and second["finished_at"]
        assert first["delete_requested_at"] and second["delete_requested_at"] == first["delete_requested_at"]
        assert "irisx-drill-copy" not in names(world)

    def test_nothing_created_means_nothing_to_delete(self, world):
        done = teardown.tear_down({"target_instance": "irisx-never", "source_instance": SOURCE}, None, ME, settings())
        assert done["state"] == "done" and "does not exist" in done["detail"]
        assert teardown.tear_down(None, None, ME, settings())["detail"] == "nothing was created"

    def test_a_copy_that_will_not_go_away_fails_the_teardown_by_name_after_its_bound(self, world, monkeypatch):
        make_instance(world, "irisx-stuck", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": ME}])
        monkeypatch.setattr(teardown, "delete_drill_copy", lambda *a, **k: (False, "irisx-stuck is being deleted"))
        progress = None
        with pytest.raises(TeardownFailed, match="the daily sweep deletes it"):
            for _ in range(100):
                progress = teardown.tear_down({"target_instance": "irisx-stuck", "source_instance": SOURCE}, progress, ME, settings())
        assert progress is not None and progress["attempts"] == 30  # drill_teardown_minutes at one look a minute


class _Recording:
    def __init__(self, client: Any, calls: list[dict[str, Any]]) -> None:
        self._client, self._calls = client, calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != "delete_db_instance":
            return attribute

        def call(**kwargs: Any) -> Any:
            self._calls.append({"op": name, **kwargs})
            return attribute(**kwargs)

        return call


class TestSweep:
    def test_the_sweep_removes_drill_copies_whose_drill_ended_or_is_too_old_and_nothing_else(self, world, monkeypatch):
        running = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-drill:running"
        make_instance(world, SOURCE, [{"Key": "env", "Value": "prod"}])
        make_instance(world, "irisx-aborted-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        make_instance(world, "irisx-running-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": running}])
        make_instance(world, "irisx-a-restore", [MANAGED, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        make_instance(world, "irisx-lookalike", [DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        monkeypatch.setattr(sweep, "_execution_status", lambda arn: "RUNNING" if arn == running else "unknown")

        report = sweep.sweep(settings())

        assert [r["instance"] for r in report["removed"]] == ["irisx-aborted-drill"]
        assert "nothing else will delete it" in report["removed"][0]["reason"]
        assert [k["instance"] for k in report["kept"]] == ["irisx-running-drill"]
        assert names(world) == ["irisx-a-restore", "irisx-lookalike", "irisx-prod-rds-postgres", "irisx-running-drill"]

        # A "running" drill whose copy outlived every drill's allowed run is a stuck one: removed too.
        later = clock.now() + timedelta(hours=13)
        monkeypatch.setattr(clock, "now", lambda: later)
        report = sweep.sweep(settings())
        assert [r["instance"] for r in report["removed"]] == ["irisx-running-drill"]
        assert "older than 12 h" in report["removed"][0]["reason"]

    def test_the_sweep_never_deletes_the_source_even_tagged_as_a_drill_copy(self, world, monkeypatch):
        make_instance(world, SOURCE, [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        monkeypatch.setattr(sweep, "_execution_status", lambda arn: "unknown")

        report = sweep.sweep(settings())

        assert report["removed"] == [] and report["refused"][0]["instance"] == SOURCE
        assert names(world) == [SOURCE]

    def test_a_drill_copy_marked_as_production_is_refused_and_the_sweep_goes_on_to_the_next(self, world, monkeypatch):
        # Given a drill-tagged copy that an in-place swap made production, and a plain leftover
        production_copy = [MANAGED, DRILL, {"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION}, {"Key": rds.TAG_EXECUTION, "Value": "old"}]
        make_instance(world, "irisx-a-serving-copy", production_copy)
        make_instance(world, "irisx-b-leftover-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        monkeypatch.setattr(sweep, "_execution_status", lambda arn: "unknown")

        report = sweep.sweep(settings())

        # Then the serving copy is kept and named, the leftover removed, and the notice says both
        assert [r["instance"] for r in report["refused"]] == ["irisx-a-serving-copy"]
        assert "serves or served production" in report["refused"][0]["reason"]
        assert [r["instance"] for r in report["removed"]] == ["irisx-b-leftover-drill"]
        assert names(world) == ["irisx-a-serving-copy"]
        subject, body = sweep.notification(report)
        assert subject.endswith("1 refused") and "did NOT delete 1 drill-tagged instance(s)" in body

    def test_a_drill_whose_execution_cannot_be_read_is_kept_and_named_and_the_sweep_goes_on_to_the_next(self, world, monkeypatch):
        from botocore.exceptions import ClientError

        # Given two leftovers, the first from a drill whose execution DescribeExecution refuses to show
        # (another deployment's, say, under the same management tag)
        unreadable = "arn:aws:states:us-east-1:123456789012:execution:other-stack-drill:x"
        make_instance(world, "irisx-a-unreadable-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": unreadable}])
        make_instance(world, "irisx-b-leftover-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])

        def status(arn: str) -> str:
            if arn == unreadable:
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeExecution")
            return "unknown"

        monkeypatch.setattr(sweep, "_execution_status", status)

        report = sweep.sweep(settings())

        # Then the first is kept and named (it may still run), the second is removed, and the notice says both
        assert [r["instance"] for r in report["refused"]] == ["irisx-a-unreadable-drill"]
        assert "could not be read (AccessDeniedException" in report["refused"][0]["reason"]
        assert [r["instance"] for r in report["removed"]] == ["irisx-b-leftover-drill"]
        assert names(world) == ["irisx-a-unreadable-drill"]

        # And once it has outlived every drill's allowed run, its age alone lets the sweep remove it
        later = clock.now() + timedelta(hours=13)
        monkeypatch.setattr(clock, "now", lambda: later)
        report = sweep.sweep(settings())
        assert [r["instance"] for r in report["removed"]] == ["irisx-a-unreadable-drill"]
        assert "older than 12 h" in report["removed"][0]["reason"]

    def test_a_deletion_rds_refuses_is_reported_and_the_sweep_goes_on_to_the_next(self, world, monkeypatch):
        # Given two leftovers, the first of which RDS (or IAM) refuses to delete
        make_instance(world, "irisx-a-denied-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        make_instance(world, "irisx-b-leftover-drill", [MANAGED, DRILL, {"Key": rds.TAG_EXECUTION, "Value": "gone"}])
        monkeypatch.setattr(sweep, "_execution_status", lambda arn: "unknown")
        real_client = aws.client

        def denying_client(service: str) -> Any:
            client = real_client(service)
            if service != "rds":
                return client
            original = client.delete_db_instance

            def delete(**kwargs: Any) -> Any:
                if kwargs["DBInstanceIdentifier"] == "irisx-a-denied-drill":
                    raise ClientError({"Error": {"Code": "AccessDenied", "Message": "explicit deny"}}, "DeleteDBInstance")
                return original(**kwargs)

            client.delete_db_instance = delete
            return client

        monkeypatch.setattr(aws, "client", denying_client)

        report = sweep.sweep(settings())

        assert [r["instance"] for r in report["refused"]] == ["irisx-a-denied-drill"]
        assert "RDS refused the deletion (AccessDenied)" in report["refused"][0]["reason"]
        assert [r["instance"] for r in report["removed"]] == ["irisx-b-leftover-drill"]

    def test_the_sweep_says_what_it_removed_and_is_silent_when_it_removed_nothing(self):
        assert sweep.notification({"removed": []}) is None
        subject, body = sweep.notification(
            {
                "removed": [
                    {"instance": "irisx-x-drill-1", "reason": "its drill execution is ABORTED", "detail": "deleted", "execution": "e"}
                ]
            }
        )
        assert subject == "[irisx-restore] drill sweep removed 1 leftover copy(ies)"
        assert "irisx-x-drill-1: its drill execution is ABORTED" in body


def test_the_sweep_reads_execution_status_and_an_unknown_execution_is_not_running(world):
    assert sweep._execution_status(None) == "unknown"
    assert sweep._execution_status("arn:aws:states:us-east-1:123456789012:execution:irisx-restore-drill:nope") == "unknown"


def test_an_instance_creation_time_is_read_as_utc():
    naive = datetime(2025, 11, 2, 12, 0)
    assert sweep._created({"InstanceCreateTime": naive}) == naive.replace(tzinfo=timezone.utc)
    assert sweep._created({}) is None


def test_the_daily_function_reads_the_journal_and_publishes_days_since_the_last_success_under_the_source(world, monkeypatch, capsys):
    import json

    import boto3

    from restore_runbook.common.observability import metrics
    from restore_runbook.drill.handlers import publish_days_since_drill
    from restorectl.lambda_bridge import LambdaContext

    table = boto3.resource("dynamodb").Table("journal")
    for day, outcome in (("2025-11-04", "SUCCEEDED"), ("2025-12-02", "FAILED")):
        table.put_item(
            Item={
                "pk": journal.execution_pk("drill"),
                "sk": f"{day}T10:00:00Z#scheduled-{day}",
                "outcome": outcome,
                "finished_at": f"{day}T10:30:00Z",
                "result": {"source_instance": SOURCE},
            }
        )
    monkeypatch.setattr(clock, "now", lambda: datetime(2025, 12, 10, 10, 30, tzinfo=timezone.utc))
    monkeypatch.setenv("JOURNAL_TABLE_NAME", "journal")
    monkeypatch.setenv("SOURCE_INSTANCE", SOURCE)
    monkeypatch.setattr(metrics.provider, "namespace", "IrisxRestore")
    # The service dimension comes from POWERTOOLS_SERVICE_NAME when the module is first imported (a rehearsal
    # sets it); these tests read the Source dimension alone, whatever ran before them in the process.
    monkeypatch.setattr(metrics.provider, "service", None)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    from restore_runbook import settings as settings_module

    settings_module.settings.cache_clear()
    metrics.clear_metrics()
    capsys.readouterr()

    age = publish_days_since_drill.handler(
        {}, LambdaContext(function_name="f", invoked_function_arn="arn:aws:lambda:us-east-1:1:function:f")
    )

    settings_module.settings.cache_clear()
    assert (age["last_success_at"], age["days_since"], age["overdue"]) == ("2025-11-04T10:30:00Z", 36.0, True)
    (document,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Source"]]
    assert (document["Source"], document["DaysSinceLastSuccessfulDrill"]) == (SOURCE, [36.0])
