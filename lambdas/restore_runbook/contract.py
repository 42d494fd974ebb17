"""Names the infrastructure and the Lambda code must agree on, each defined once.

A tag the code writes is the tag an IAM condition in `stacks/` matches; a pattern a setting is
checked against at synth is the one the code checks at cold start and SSM enforces on a host. So
`stacks/` imports this module (the infrastructure knows the code's contract), never the reverse,
and nothing here imports AWS libraries: it loads at synth time without them.
"""

from __future__ import annotations

import re

# -- tags ---------------------------------------------------------------------------------------------
# The management tag marks what this tool created (and so may delete); its key and value are
# settings (`management_tag_key`, `management_tag_value`), these are their defaults.
DEFAULT_MANAGEMENT_TAG_KEY = "irisx-restore:managed-by"
DEFAULT_MANAGEMENT_TAG_VALUE = "restore-runbook"
# Every tag below starts with this: what the tool says about an instance is never copied onto a new
# one (a copy of production must not inherit production's role marker, nor a drill copy's purpose).
TOOL_TAG_PREFIX = "irisx-restore:"
TAG_WORKFLOW = "irisx-restore:workflow"
TAG_EXECUTION = "irisx-restore:execution"
TAG_SOURCE = "irisx-restore:source"
TAG_RESTORE_POINT = "irisx-restore:restore-point"
# A drill's temporary copy (lambdas/restore_runbook/drill/): never a cutover target, always deleted.
TAG_PURPOSE = "irisx-restore:purpose"
PURPOSE_DRILL = "drill"
# What an instance is to the tool once a swap made it production, or replaced it: never a deletable copy.
TAG_ROLE = "irisx-restore:role"
ROLE_PRODUCTION = "production"
ROLE_REPLACED_PRODUCTION = "replaced-production"
PROTECTED_ROLES = frozenset({ROLE_PRODUCTION, ROLE_REPLACED_PRODUCTION})
# On the CloudWatch alarms a carry-over made for the instance production now runs on: the instance it copied them from.
# The rollback deletes only alarms carrying it, and IAM lets no role create or delete an alarm without it.
TAG_CARRIED_FROM = "irisx-restore:carried-from"
# On snapshots the snapshot workflow takes (TAG_WORKFLOW = SNAPSHOT_WORKFLOW on each).
TAG_REASON = "irisx-restore:reason"
TAG_LABEL = "irisx-restore:label"
TAG_REQUESTED_BY = "irisx-restore:requested-by"
TAG_PIPELINE_RUN = "irisx-restore:pipeline-run"
SNAPSHOT_WORKFLOW = "snapshot"
# Why a snapshot is taken: its name, its retention count, the value of its TAG_REASON.
SNAPSHOT_REASONS = ("pre-migration", "bulk-operation", "upgrade", "config-change", "manual")

# -- the journal's partition keys (journal/table.py): IAM limits each role's writes to the keys it needs -----
JOURNAL_EXECUTION_PK = "WORKFLOW#{workflow}"
JOURNAL_LOCK_PK = "LOCK#{resource}"
# The prefixes of one recordings bucket held by restores (journal/prefix_registry.py), one item per bucket.
JOURNAL_PREFIX_REGISTRY_PK = "PREFIXES#s3:{bucket}"
# A scheduled drill's claim of its scheduled time (drill/request.py).
JOURNAL_DRILL_CLAIM_PK = "DRILL#{source}"
# The status-change function's timeout (stacks/abandoned.py), which no workflow's end step exceeds: an
# end notice still "pending" this long after its writer marked it was never sent, because that writer
# can no longer be running (journal/notice.py).
STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS = 60

# -- identifiers --------------------------------------------------------------------------------------
RDS_IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# The SSM documents' allowedPatterns (strings: SSM takes them as they are). Host names (RDS
# endpoints) and IPv4 addresses: letters, digits, dots and hyphens only.
DB_HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$"
# Absolute paths: 1 to 16 "/segment"s, each 1-64 characters from [A-Za-z0-9._-] and neither "." nor
# ".." (a segment starts with a letter, digit or "_"; or "." and one of those or "-"; or ".." and at
# least one more character), so no "..", no "//", no trailing "/". Only constructs that mean the
# same to Python's re, an ECMAScript RegExp (SSM checks allowedPattern itself) and POSIX ERE (the
# scripts re-check it verbatim with bash's =~): no lookahead, no \d, no lazy or possessive
# quantifiers. The bounded repetitions stand in for a length limit (at most 16 * 65 characters).
ENV_FILE_PATTERN = r"^(/([A-Za-z0-9_][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})){1,16}$"
APP_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HEALTH_URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"

# -- the recordings work bucket (stacks/workflows/recordings.py) ---------------------------------------
# Where a drill copies older recording versions to prove them restorable; every copy is removed by the
# drill itself, and a lifecycle rule on this prefix expires whatever a crashed drill left.
DRILL_SCRATCH_PREFIX = "drill-scratch/"
# What a copy of a recording version made by multipart (over 5 GB) carries in its user metadata, so a
# re-run recognizes it as already restored: its ETag differs from the source's.
RESTORED_FROM_VERSION_METADATA = "irisx-restored-from-version"
RESTORED_FROM_ETAG_METADATA = "irisx-restored-from-etag"

# -- names derived from the stack's name prefix -------------------------------------------------------
SET_DB_HOST_DOCUMENT = "set-db-host"
APP_CONTROL_DOCUMENT = "app-control"


def document_name(name_prefix: str, document_key: str) -> str:
    """The deployed name of one of the project's SSM Command documents."""
    return f"{name_prefix}-{document_key}"


def state_machine_name(name_prefix: str, workflow: str) -> str:
    return f"{name_prefix}-{workflow}"


# -- environment variables the stack sets beside the declared settings (restore_runbook/settings.py) ---
ENV_JOURNAL_TABLE_NAME = "JOURNAL_TABLE_NAME"
ENV_NOTIFY_TOPIC_ARN = "NOTIFY_TOPIC_ARN"
# Set to the name prefix: the abandoned-execution handler strips it from a state machine's name.
ENV_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
ENV_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
