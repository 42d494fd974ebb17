"""The drill's input: its shape, the random restore point, its names and its lock."""
# ruff: noqa: S311 - seeded generators make the property test reproducible; nothing here is secret

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from restore_runbook.common import rds
from restore_runbook.common.errors import InvalidInput
from restore_runbook.drill import request as drill
from restore_runbook.settings import RDS_IDENTIFIER, RunbookSettings

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE, **overrides})


class TestShape:
    def test_an_empty_input_is_a_latest_point_in_time_drill_of_the_configured_source_deleted_at_once(self):
        checked = drill.check_shape({}, settings())
        assert checked["source_instance"] == SOURCE
        assert (checked["mode"], checked["restore_point"], checked["keep_minutes"]) == ("point-in-time", "latest", 0)
        assert checked["scheduled_time"] is None
        assert drill.check_shape(None, settings())["restore_point"] == "latest"

    @pytest.mark.parametrize(
        ("point", "mode", "snapshot_id"),
        [
            ("random", "point-in-time", None),
            ("2025-11-01T08:30:00Z", "point-in-time", None),
            ("snapshot:latest", "snapshot", "latest"),
            ("snapshot:irisx-pre-migration-20251031-090000", "snapshot", "irisx-pre-migration-20251031-090000"),
            ("snapshot:rds:irisx-prod-rds-postgres-2025-11-01-03-07", "snapshot", "rds:irisx-prod-rds-postgres-2025-11-01-03-07"),
        ],
    )
    def test_each_restore_point_form_chooses_its_mode(self, point, mode, snapshot_id):
        checked = drill.check_shape({"restore_point": point}, settings())
        assert checked["mode"] == mode
        assert checked.get("snapshot_id") == snapshot_id

    def test_the_scheduled_time_is_normalised_so_a_differently_spelled_retry_is_the_same_drill(self):
        a = drill.check_shape({"scheduled_time": "2025-12-02T10:00:00Z"}, settings())["scheduled_time"]
        b = drill.check_shape({"scheduled_time": "2025-12-02T11:00:00+01:00"}, settings())["scheduled_time"]
        assert a == b == "2025-12-02T10:00:00Z"

    @pytest.mark.parametrize(
        ("request_", "message"),
        [
            ([], "must be a JSON object"),
            ({"mode": "snapshot"}, "unknown input field(s) mode"),
            ({"restore_point": "yesterday"}, "none of latest, random"),
            ({"restore_point": "2025-11-01T08:30:00"}, "none of latest, random"),
            ({"restore_point": "snapshot:"}, "valid RDS snapshot identifier"),
            ({"restore_point": "snapshot:bad id"}, "valid RDS snapshot identifier"),
            ({"restore_point": ""}, "non-empty string"),
            ({"source_instance": "irisx--prod"}, "not a valid RDS identifier"),
            ({"keep_minutes": -1}, "0 or more"),
            ({"keep_minutes": 1.5}, "whole number"),
            ({"keep_minutes": True}, "whole number"),
            ({"keep_minutes": 241}, "more than the 240 minutes"),
            ({"scheduled_time": "first tuesday"}, "not an ISO-8601 UTC time"),
            ({"requested_by": "x" * 300}, "longer than 256"),
        ],
    )
    def test_bad_input_is_refused_before_anything_is_created(self, request_, message):
        with pytest.raises(InvalidInput) as caught:
            drill.check_shape(request_, settings())
        assert message in str(caught.value)

    def test_the_keep_bound_is_a_setting(self):
        assert drill.check_shape({"keep_minutes": 30}, settings(DRILL_MAX_KEEP_MINUTES="30"))["keep_minutes"] == 30
        with pytest.raises(InvalidInput, match="more than the 30 minutes"):
            drill.check_shape({"keep_minutes": 31}, settings(DRILL_MAX_KEEP_MINUTES="30"))


class TestRandomPoint:
    def test_a_random_point_is_always_inside_the_window_and_clear_of_its_moving_old_edge(self):
        # Property-style: many windows (from barely long enough to the whole retention), many seeds.
        rng_windows = random.Random(7)
        for seed in range(2000):
            latest = datetime(2025, 11, 2, 11, 55, tzinfo=timezone.utc) - timedelta(seconds=rng_windows.randint(0, 10**6))
            length = timedelta(seconds=rng_windows.choice([601, 700, 3600, 86400, 7 * 86400, 35 * 86400]) + rng_windows.random())
            window = rds.RestoreWindow(earliest=latest - length, latest=latest)
            point = drill.random_point(window, random.Random(seed))
            assert window.earliest + drill.RANDOM_MARGIN <= point <= window.latest, (seed, window.describe(), point)
            assert point.microsecond == 0 and point.tzinfo is not None

    def test_random_points_spread_over_the_whole_window_not_only_its_newest_edge(self):
        latest = datetime(2025, 11, 2, 11, 55, tzinfo=timezone.utc)
        window = rds.RestoreWindow(earliest=latest - timedelta(days=7), latest=latest)
        points = [drill.random_point(window, random.Random(seed)) for seed in range(400)]
        fractions = sorted((p - window.earliest) / (window.latest - window.earliest) for p in points)
        # Uniform: each quarter of the window gets about a quarter of the points.
        for quarter in range(4):
            share = sum(quarter / 4 <= f < (quarter + 1) / 4 for f in fractions) / len(fractions)
            assert 0.15 < share < 0.35, (quarter, share)

    def test_a_window_too_short_for_a_random_point_says_to_use_latest(self):
        latest = datetime(2025, 11, 2, 11, 55, tzinfo=timezone.utc)
        window = rds.RestoreWindow(earliest=latest - timedelta(minutes=9), latest=latest)
        with pytest.raises(InvalidInput, match="use restore_point 'latest'"):
            drill.random_point(window, random.Random(1))


def test_the_drill_copy_is_named_for_a_drill_and_is_a_valid_identifier_even_for_a_long_source():
    now = datetime(2025, 12, 2, 10, 0, 3, tzinfo=timezone.utc)
    assert drill.drill_target_name(SOURCE, now) == "irisx-prod-rds-postgres-drill-20251202-100003"
    long_name = drill.drill_target_name("a" * 63, now)
    assert len(long_name) <= 63 and RDS_IDENTIFIER.match(long_name) and long_name.endswith("-drill-20251202-100003")


def test_the_drill_takes_its_own_lock_never_the_one_restore_and_rollback_take_on_the_source():
    assert drill.lock_resource(SOURCE) == f"drill:{SOURCE}"
    assert drill.lock_resource(SOURCE) != SOURCE and drill.lock_resource(SOURCE) != f"rds:{SOURCE}"


def test_objectives_default_to_the_runbooks_and_follow_the_settings():
    pit = drill.objectives(settings(), "point-in-time", keep_minutes=0)
    snap = drill.objectives(settings(), "snapshot", keep_minutes=10)
    assert (pit["rto_seconds"], pit["rpo_seconds"]) == (30 * 60, 5 * 60)
    assert (snap["rto_seconds"], snap["rpo_seconds"]) == (20 * 60, None)
    assert (pit["alive_beyond_restore_seconds"], snap["alive_beyond_restore_seconds"]) == (5 * 60, 15 * 60)
    tuned = drill.objectives(settings(DRILL_RTO_POINT_IN_TIME_MINUTES="45", DRILL_RPO_MINUTES="2"), "point-in-time", 0)
    assert (tuned["rto_seconds"], tuned["rpo_seconds"]) == (45 * 60, 2 * 60)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DRILL_RPO_MINUTES": "0"}, "DRILL_RPO_MINUTES must be a positive"),
        ({"DRILL_MAX_KEEP_MINUTES": "-5"}, "zero or more"),
        ({"DRILL_LIFETIME_HOURS": "2", "DRILL_MAX_KEEP_MINUTES": "180"}, "longer than DRILL_MAX_KEEP_MINUTES"),
    ],
)
def test_bad_drill_settings_stop_the_function_at_cold_start(overrides, message):
    with pytest.raises(InvalidInput, match=message):
        settings(**overrides)
