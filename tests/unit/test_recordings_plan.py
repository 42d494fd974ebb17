"""The recordings planner: the per-key rule, pagination across pages, and the input checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restore_runbook.common.errors import InvalidInput, RecordingVersionNotFound, RestoreTimeOutOfRange
from restore_runbook.recordings import plan, request
from restore_runbook.recordings.plan import Item
from restore_runbook.settings import RunbookSettings
from restorectl.emulated_recordings import S3Clock, create_versioned_bucket

pytestmark = pytest.mark.unit

NOW = datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc)
T = NOW - timedelta(days=2)
BUCKET, WORK = "irisx-recordings", "irisx-restore-work"


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env({"SOURCE_INSTANCE": "irisx-prod-rds-postgres", "RECORDINGS_WORK_BUCKET": WORK, **overrides})


def as_of(**extra: Any) -> request.RecordingsRequest:
    return request.check_shape({"bucket": BUCKET, "prefix": "recordings/", "as_of": T.isoformat(), **extra}, settings(), NOW)


def undelete_after() -> request.RecordingsRequest:
    return request.check_shape({"bucket": BUCKET, "prefix": "recordings/", "undelete_after": T.isoformat()}, settings(), NOW)


def history(*items: str) -> list[Item]:
    """Newest first, from the table's notation: 'V1<' is a version before T, 'DM2>' a marker after T."""
    out = []
    for offset, text in enumerate(items):
        marker = text.startswith("DM")
        when = T + timedelta(hours=10 - offset) if text.endswith(">") else T - timedelta(hours=1 + offset)
        name = text.rstrip("<>")
        out.append(Item(version_id=name, last_modified=when, marker=marker, size=0 if marker else 10, etag="" if marker else f'"{name}"'))
    return out


# The AWS guidance's "Bucket Rollback" table (before T | after T -> action), newest first here.
@pytest.mark.parametrize(
    ("versions", "expected", "restores"),
    [
        (["DM1>", "V1<"], plan.UNDELETE_ACTION, "V1"),  # V1 | DM1 -> delete DM1
        (["DM1>", "V1>"], plan.UNCHANGED, None),  # - | V1, DM1 -> none
        (["DM2>", "V2>", "DM1<", "V1<"], plan.UNCHANGED, None),  # V1, DM1 | V2, DM2 -> none
        (["DM2>", "V2>", "DM1>", "V1<"], plan.COPY, "V1"),  # V1 | DM1, V2, DM2 -> copy V1
        (["V2>", "V1<"], plan.COPY, "V1"),  # V1 | V2 -> copy V1
        (["V1>"], plan.CREATED_AFTER, None),  # - | V1 -> place DM (only with hide_created_after)
        (["V1<"], plan.UNCHANGED, None),  # untouched since before T
        (["DM2>", "DM1>", "V1<"], plan.UNDELETE_ACTION, "V1"),  # two markers stacked after T: both go
        (["V2>", "DM1<", "V1<"], plan.CREATED_AFTER, None),  # deleted at T, written again after
    ],
)
def test_each_key_gets_the_rollback_tables_action(versions: list[str], expected: str, restores: str | None) -> None:
    outcome, entry = plan.decide("recordings/1/9.wav", history(*versions), as_of())
    assert outcome == expected
    if expected == plan.COPY:
        assert entry["version_id"] == restores and entry["action"] == "copy"
        # what the key held when planned, so the apply copies over nothing written since
        current = versions[0].rstrip("<>")
        assert entry["planned_current"] == (None if current.startswith("DM") else current)
    if expected == plan.UNDELETE_ACTION:
        assert entry["restores"] == restores
        assert entry["markers"] == [v.rstrip("<>") for v in versions if v.startswith("DM") and v.endswith(">")]


def test_a_key_created_after_the_time_is_hidden_with_a_marker_only_when_asked() -> None:
    outcome, entry = plan.decide("k", history("V1>"), as_of(hide_created_after=True))
    assert (outcome, entry["action"], entry["version_id"]) == (plan.HIDE, "hide", "V1")


def test_a_newer_version_with_the_same_content_is_skipped_not_copied_again() -> None:
    same = [Item("V2", T + timedelta(hours=1), False, 10, '"x"'), Item("V1", T - timedelta(hours=1), False, 10, '"x"')]
    assert plan.decide("k", same, as_of())[0] == plan.SAME_CONTENT


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["DM1>", "V1<"], plan.UNDELETE_ACTION),
        (["DM2>", "DM1>", "V1>"], plan.UNDELETE_ACTION),  # undelete does not care when the version was written
        (["DM1<", "V1<"], plan.NOT_DELETED),  # deleted before T: not this incident's
        (["V2>", "V1<"], plan.NOT_DELETED),
        (["DM2>", "DM1<", "V1<"], plan.NOTHING_UNDER_MARKER),  # removing DM2 would still leave it deleted
    ],
)
def test_undelete_removes_only_markers_placed_after_the_time(versions: list[str], expected: str) -> None:
    assert plan.decide("k", history(*versions), undelete_after())[0] == expected


# ---------------------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        ({"bucket": "someone-elses", "prefix": "r/", "as_of": T.isoformat()}, InvalidInput, "not a recordings bucket"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": T.isoformat(), "undelete_after": T.isoformat()}, InvalidInput, "exactly one"),
        ({"bucket": BUCKET, "key": "k", "version_id": "v", "prefix": "r/"}, InvalidInput, "do not go with"),
        ({"bucket": BUCKET, "key": "k"}, InvalidInput, "also needs version_id"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": (NOW + timedelta(minutes=5)).isoformat()}, RestoreTimeOutOfRange, "future"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": (NOW - timedelta(days=31)).isoformat()}, RestoreTimeOutOfRange, "30 days"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": "2025-11-01T09:00:00"}, InvalidInput, "offset"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": T.isoformat(), "dry_run": "yes"}, InvalidInput, "true or false"),
        ({"bucket": BUCKET, "prefix": "r/", "as_of": T.isoformat(), "hide_created": True}, InvalidInput, "unknown input"),
        ({"bucket": BUCKET, "key": "k", "version_id": "v", "target_bucket": "elsewhere"}, InvalidInput, "not a recordings bucket"),
    ],
)
def test_bad_inputs_are_refused_with_a_plain_cause(fields: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        request.check_shape(fields, settings(), NOW)


def test_the_lock_is_on_what_the_restore_writes() -> None:
    assert as_of().lock_resource == f"s3:{BUCKET}/recordings/"
    one = request.check_shape({"bucket": BUCKET, "key": "a.wav", "version_id": "v", "target_key": "b.wav"}, settings(), NOW)
    assert one.lock_resource == f"s3:{BUCKET}/b.wav"


# ---------------------------------------------------------------------------------------- moto


@pytest.fixture
def s3() -> Iterator[tuple[Any, S3Clock]]:
    with mock_aws():
        clock = S3Clock(live=lambda: NOW)
        with clock.installed():
            client = boto3.client("s3")
            create_versioned_bucket(client, BUCKET)
            client.create_bucket(Bucket=WORK)
            yield client, clock


def test_a_missing_version_a_marker_and_another_keys_version_are_refused(s3: tuple[Any, S3Clock], monkeypatch) -> None:
    client, clock = s3
    monkeypatch.setattr("restore_runbook.common.clock.now", lambda: NOW)
    with clock.at(T):
        v1 = client.put_object(Bucket=BUCKET, Key="recordings/1/1.wav", Body=b"one")["VersionId"]
        client.put_object(Bucket=BUCKET, Key="recordings/1/2.wav", Body=b"two")
        marker = client.delete_object(Bucket=BUCKET, Key="recordings/1/2.wav")["VersionId"]
    for key, version, words in (
        ("recordings/1/1.wav", "nope", "has no version"),
        ("recordings/1/2.wav", v1, "has no version"),  # a version of another key
        ("recordings/1/2.wav", marker, "delete marker"),
    ):
        with pytest.raises(RecordingVersionNotFound, match=words):
            request.check_request({"bucket": BUCKET, "key": key, "version_id": version}, settings())
    assert request.check_request({"bucket": BUCKET, "key": "recordings/1/1.wav", "version_id": v1}, settings()).mode == "version"


def seed_split_histories(client: Any, clock: S3Clock, keys: int) -> None:
    """Keys whose versions and markers straddle page boundaries: the table's rows, over and over."""
    rows = [["V1<", "DM1>"], ["V1<", "V2>"], ["V1<", "DM1>", "V2>", "DM2>"], ["V1>"], ["V1<", "DM1<", "V2>", "DM2>"], ["V1<"]]
    for number in range(keys):
        key = f"recordings/{number % 3}/{number:04d} call+{number}.wav"
        for step, event in enumerate(rows[number % len(rows)]):
            when = T + timedelta(minutes=10 + step) if event.endswith(">") else T - timedelta(hours=5 - step)
            with clock.at(when):
                if event.startswith("DM"):
                    client.delete_object(Bucket=BUCKET, Key=key)
                else:
                    client.put_object(Bucket=BUCKET, Key=key, Body=f"{key}:{event}".encode())


def run_planner(req: request.RecordingsRequest, st: RunbookSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    progress = None
    while progress is None or not progress["done"]:
        progress = plan.plan_next(req.to_state(), progress, "arn:aws:states:us-east-1:1:execution:sm:run-1", st)
        json.dumps(progress)  # it travels in the state: plain JSON only
    finished = plan.finish_plan(req.to_state(), progress, "arn:aws:states:us-east-1:1:execution:sm:run-1")
    return progress, finished


def test_a_plan_over_many_small_pages_equals_the_one_page_plan(s3: tuple[Any, S3Clock], monkeypatch) -> None:
    # Given 40 keys with 1-4 versions and markers each, listed 3 at a time, 2 pages per planner invocation
    client, clock = s3
    seed_split_histories(client, clock, 40)
    small = settings(RECORDINGS_LIST_PAGE_SIZE="3", RECORDINGS_PAGES_PER_INVOCATION="2", RECORDINGS_BATCH_SIZE="4")
    whole = settings(RECORDINGS_BATCH_SIZE="4")
    req = as_of()

    # When the planner pages through them, and when it lists them in one page
    paged, paged_plan = run_planner(req, small)
    batches_paged = json.loads(client.get_object(Bucket=WORK, Key=paged_plan["plan_key"])["Body"].read())
    one, one_plan = run_planner(req, whole)
    batches_one = json.loads(client.get_object(Bucket=WORK, Key=one_plan["plan_key"])["Body"].read())

    # Then it took many pages and several invocations, and decided every key exactly as the one-page plan did
    assert paged["totals"]["pages"] > 20 and paged["invocations"] > 5
    entries = sorted((e for b in batches_paged for e in b["entries"]), key=lambda e: e["key"])
    assert entries == sorted((e for b in batches_one for e in b["entries"]), key=lambda e: e["key"])
    assert paged["totals"]["keys"] == one["totals"]["keys"] == 40
    assert {k: v for k, v in paged["totals"].items() if k != "pages"} == {k: v for k, v in one["totals"].items() if k != "pages"}
    assert paged_plan["totals"]["actions"] == {"copy": 14, "undelete": 7, "hide": 0}
    assert paged_plan["totals"]["left_as_is"]["created-after"] == 7
    assert paged_plan["totals"]["left_as_is"]["unchanged"] == 12
    assert all(len(batch["entries"]) <= 4 for batch in batches_paged) and paged_plan["batch_count"] == len(batches_paged)
    # Undelete batches hold only undeletes: they run in the one function allowed to delete marker versions
    for batch in batches_paged:
        assert {e["action"] == "undelete" for e in batch["entries"]} == {batch["kind"] == "undelete"}


def test_a_key_with_more_versions_than_a_page_is_decided_once(s3: tuple[Any, S3Clock]) -> None:
    client, clock = s3
    for minute in range(7):
        with clock.at(T - timedelta(hours=1) + timedelta(minutes=minute * 20)):
            client.put_object(Bucket=BUCKET, Key="recordings/1/long.wav", Body=f"take {minute}".encode())
    with clock.at(T + timedelta(hours=3)):
        client.delete_object(Bucket=BUCKET, Key="recordings/1/long.wav")
    progress, finished = run_planner(as_of(), settings(RECORDINGS_LIST_PAGE_SIZE="2", RECORDINGS_PAGES_PER_INVOCATION="1"))
    batches = json.loads(client.get_object(Bucket=WORK, Key=finished["plan_key"])["Body"].read())
    (entry,) = [e for b in batches for e in b["entries"]]
    # takes at T-60, -40, -20, 0 (= T), +20...: the take at T is the state at T; the later ones are under the marker
    assert entry["action"] == "copy" and progress["totals"]["keys"] == 1
    body = client.get_object(Bucket=BUCKET, Key="recordings/1/long.wav", VersionId=entry["version_id"])["Body"].read()
    assert body == b"take 3"


def test_the_planner_loop_is_bounded(s3: tuple[Any, S3Clock], monkeypatch) -> None:
    monkeypatch.setattr(plan, "MAX_PLAN_ROUNDS", 3)
    client, clock = s3
    seed_split_histories(client, clock, 12)
    with pytest.raises(InvalidInput, match="narrower prefixes"):
        run_planner(as_of(), settings(RECORDINGS_LIST_PAGE_SIZE="2", RECORDINGS_PAGES_PER_INVOCATION="1"))


# ------------------------------------------------------------------------- same-second histories

AT_T_PLUS = T + timedelta(minutes=30)  # one whole second (S3 lists LastModified to the second)


def page_of(*entries: tuple[str, str, datetime, bool]) -> dict[str, Any]:
    """A ListObjectVersions page as boto3 returns it, versions and markers in two lists: (kind, id, when, latest)."""
    versions = [
        {"Key": "k", "VersionId": i, "LastModified": w, "IsLatest": latest, "Size": 10, "ETag": f'"{i}"'}
        for kind, i, w, latest in entries
        if kind == "V"
    ]
    markers = [{"Key": "k", "VersionId": i, "LastModified": w, "IsLatest": latest} for kind, i, w, latest in entries if kind == "DM"]
    return {"Versions": versions, "DeleteMarkers": markers}


def test_a_version_and_a_marker_of_one_second_are_never_guessed_at_so_a_deleted_recording_is_not_copied_back() -> None:
    # Given V2 written and then deleted (DM1) within one second before T, and V3 written after T: at T the key was
    # deleted, so the right outcome leaves V3 current; listed in two lists, the second's order is lost
    page = page_of(
        ("V", "V3", T + timedelta(hours=1), True),
        ("V", "V2", AT_T_PLUS - timedelta(hours=1), False),
        ("V", "V1", T - timedelta(hours=3), False),
        ("DM", "DM1", AT_T_PLUS - timedelta(hours=1), False),
    )
    (history_,) = plan._items(page).values()

    outcome, entry = plan.decide("k", history_, as_of())

    # Then the key is reported, naming both and the second, and nothing is planned for it (no copy of V2 over V3)
    assert outcome == plan.SAME_SECOND
    assert sorted(entry["version_ids"]) == ["DM1", "V2"] and "which came first is unknown" in entry["detail"]


def test_undelete_does_not_guess_either_when_a_marker_and_a_version_share_a_second() -> None:
    late = T + timedelta(hours=2)
    page = page_of(("DM", "DM2", late + timedelta(hours=1), True), ("DM", "DM1", late, False), ("V", "V2", late, False))
    (history_,) = plan._items(page).values()
    assert plan.decide("k", history_, undelete_after())[0] == plan.SAME_SECOND


def test_same_second_ties_that_s3s_own_order_settles_are_decided_as_usual() -> None:
    # Two versions in one second keep S3's order within its Versions list; the current one is placed by IsLatest
    second = T - timedelta(hours=1)
    two_versions = page_of(("V", "V3", T + timedelta(hours=1), True), ("V", "V2", second, False), ("V", "V1", second, False))
    (history_,) = plan._items(two_versions).values()
    outcome, entry = plan.decide("k", history_, as_of())
    assert (outcome, entry["version_id"]) == (plan.COPY, "V2")
    current_tied = page_of(("DM", "DM1", second, True), ("V", "V1", second, False))
    (history_,) = plan._items(current_tied).values()
    assert plan.decide("k", history_, as_of())[0] == plan.UNCHANGED  # deleted at T, deleted now


def test_a_key_left_for_its_same_second_history_is_counted_in_the_plan_totals() -> None:
    totals = plan.empty_totals()
    plan._count(totals, plan.SAME_SECOND, {"key": "k"})
    assert totals["left_as_is"][plan.SAME_SECOND] == 1 and totals["entries"] == 0


def test_a_same_second_pair_in_a_second_that_decides_nothing_does_not_hold_the_key_back() -> None:
    # Given a key deleted after T (DM2), its wanted version V2 before T, and an old version and marker of one second
    old = T - timedelta(days=1)
    page = page_of(
        ("DM", "DM2", T + timedelta(hours=1), True),
        ("V", "V2", T - timedelta(hours=1), False),
        ("V", "V1", old, False),
        ("DM", "DM1", old, False),
    )
    (history_,) = plan._items(page).values()

    # Then both modes decide it as usual: the old pair's order changes neither the state at T nor what the marker exposes
    outcome, entry = plan.decide("k", history_, as_of())
    assert (outcome, entry["restores"], entry["markers"]) == (plan.UNDELETE_ACTION, "V2", ["DM2"])
    outcome, entry = plan.decide("k", history_, undelete_after())
    assert (outcome, entry["restores"]) == (plan.UNDELETE_ACTION, "V2")
