"""The emulation's GetExecutionHistory paging, which moto ignores and the abandoned-execution function relies on."""

from __future__ import annotations

import pytest

from restorectl.emulated_sfn import page_of_history

pytestmark = pytest.mark.unit

EVENTS = [{"id": i} for i in range(1, 2501)]


def test_newest_first_when_asked_in_pages_of_at_most_a_thousand():
    first = page_of_history(EVENTS, reverse=True, max_results=None, token=None)
    assert [e["id"] for e in first["events"][:2]] == [2500, 2499] and len(first["events"]) == 1000
    second = page_of_history(EVENTS, reverse=True, max_results=None, token=first["nextToken"])
    last = page_of_history(EVENTS, reverse=True, max_results=None, token=second["nextToken"])
    assert [e["id"] for e in last["events"]][-1] == 1 and "nextToken" not in last
    assert len(first["events"]) + len(second["events"]) + len(last["events"]) == len(EVENTS)


def test_oldest_first_by_default_and_max_results_is_honoured():
    page = page_of_history(EVENTS, reverse=False, max_results=50, token=None)
    assert [e["id"] for e in page["events"]] == list(range(1, 51)) and page["nextToken"] == "50"
    assert page_of_history(EVENTS, reverse=False, max_results=5000, token=None)["events"][-1]["id"] == 1000
