"""The rehearsal copies only the databases a workflow uses (restorectl/emulated_rds.py)."""

from __future__ import annotations

import io

import pytest

pytestmark = pytest.mark.workflow


def databases(local_pg) -> set[str]:
    conn = local_pg.connect("postgres", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_seeding_copies_only_the_source_and_a_snapshot_restore_one_more(rehearsal, local_pg):
    # Given a freshly seeded world: production and its eight snapshots
    world = rehearsal(calls_rows=300, progress=io.StringIO())
    before = databases(local_pg)

    # Then seeding copied the golden source once, for production, and no snapshot has a database
    assert world.rds.copies_made == 1
    assert not any("snap" in name or name.endswith(("_a1", "_m1")) for name in before)

    # When a workflow restores from a seeded snapshot
    result = world.run("restore", {"mode": "snapshot"})

    # Then exactly one more copy was made, the restored instance's, and the progress display followed the run
    assert result.status == "SUCCEEDED", result.cause
    assert world.rds.copies_made == 2
    assert databases(local_pg) - before == {world.rds.instance_db[result.output["target_instance"]]}
    assert world.options.progress.getvalue().split() == result.states()  # each state once, in order


def test_a_snapshot_the_workflow_takes_is_copied_when_taken_and_teardown_drops_every_copy(rehearsal, local_pg):
    before = databases(local_pg)
    world = rehearsal(calls_rows=300)

    result = world.run("snapshot", {"reason": "pre-migration"})

    assert result.status == "SUCCEEDED", result.cause
    assert world.rds.copies_made == 2  # production, and the snapshot taken of it
    made = list(world.rds.run_databases)
    world.rds.teardown()
    left = databases(local_pg)
    assert not left & set(made)
    assert all("golden" in name for name in left - before)  # only the seeded source stays, as a template for the next run
