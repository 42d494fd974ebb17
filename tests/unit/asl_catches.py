"""The failure paths of a definition, as the structural tests walk them."""

from __future__ import annotations

from typing import Any

# Every top-level Task's first Catch (tests/unit/test_asl_house_pattern.py): taken only in a redriven
# attempt, by the first step it enters, which refused before doing anything (common/redrive.py).
REDRIVE_REFUSAL = ["RedriveRefused"]


def failure_catches(state: dict[str, Any]) -> list[dict[str, Any]]:
    """A state's Catch clauses but the redrive refusal: the ways a step that ran fails on."""
    return [catch for catch in state.get("Catch", []) if catch["ErrorEquals"] != REDRIVE_REFUSAL]
