"""Starting the app again on every host after the swap or the rename-back: DB_HOST is unchanged.

The endpoint name is production's both before and after, so no .env changes; a `pm2 restart` of
the stopped process makes the app reconnect through DNS to whichever instance holds the name.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common.errors import CutoverFailed
from restore_runbook.hosts import commands, ssm
from restore_runbook.settings import RunbookSettings


def _serving_hosts(plan: dict[str, Any], settings: RunbookSettings) -> tuple[list[str], list[str]]:
    """The hosts that serve now (ssm.serving_now) and the planned ones gone; CutoverFailed when none is left."""
    planned = list(plan["hosts"])
    hosts, gone = ssm.serving_now(planned, settings)
    if not hosts:
        raise CutoverFailed(f"none of the app hosts ({', '.join(planned) or 'none'}) is running any more, and no host carries the app tag")
    return hosts, gone


def start_app(plan: dict[str, Any], why: str, settings: RunbookSettings) -> dict[str, Any]:
    """Start the app on the hosts that serve now: the plan listed them before the stop, many minutes
    earlier; a replacement started since must serve the same database."""
    hosts, gone = _serving_hosts(plan, settings)
    endpoint = plan["production_endpoint"]["address"]
    command = ssm.app_control(hosts, "restart", settings, f"irisx-restore in-place: start the app ({why})")
    return commands.new_progress([command], dict.fromkeys(hosts, endpoint), settings, why=why, hosts_gone=gone)


def stop_started_app(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """Stop the app the start (re)started on the copy before renaming back: with the app running, the
    renames would split its writes between the copy and the original, whichever held the name.

    The hosts are found as the start found them: the start's own record is missing when the start
    itself failed after sending."""
    hosts, gone = _serving_hosts(plan, settings)
    command = ssm.app_control(hosts, "stop", settings, "irisx-restore in-place: stop the app on the copy before renaming back")
    return commands.new_progress([command], dict.fromkeys(hosts), settings, hosts_gone=gone)
