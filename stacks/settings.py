"""The runbook's settings as the stack sees them: read once from the `runbook` context, checked, typed.

The Lambda steps' settings are declared in `lambdas/restore_runbook/settings.py` (type, default,
check, environment variable); the stack parses cdk.json with that same declaration and writes each
value into the functions' environment (`lambda_environment`), where the functions parse it again at
cold start. Checking here as well means a typo in `cdk.json` stops `cdk synth` with the key's name
instead of failing a restore half-way. The settings only the stack reads are declared below, the
same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restore_runbook.contract import APP_CONTROL_DOCUMENT, SET_DB_HOST_DOCUMENT, document_name
from restore_runbook.settings import (
    RunbookSettings,
    SnapshotSettings,
    context_keys,
    environment_of,
    setting,
    values_from_context,
)
from stacks import ssm_documents

# The runbook's own examples ("vpc-xxxxxx", "sg-xxxxxx") are accepted: the prefix is what is checked.
VPC_ID = re.compile(r"^vpc-[0-9a-zA-Z]+$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-zA-Z]+$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-zA-Z]+$")
AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, kw_only=True)
class StackSettings(RunbookSettings):
    """Every setting in cdk.json: the Lambda steps' (inherited, and `snapshot`), and the stack's own below."""

    @classmethod
    def setting_error(cls, at_cold_start: str, at_synth: str) -> Exception:
        return ValueError(at_synth)

    vpc_id: str = setting(kind="text", pattern=VPC_ID, expected="a VPC id like vpc-0abc...")
    subnet_ids: tuple[str, ...] = setting(kind="texts", pattern=SUBNET_ID, expected="subnet ids like subnet-0abc...")
    availability_zones: tuple[str, ...] = setting(kind="texts", pattern=AVAILABILITY_ZONE, expected="availability zones like us-east-1a")
    security_group_ids: tuple[str, ...] = setting(kind="texts", pattern=SECURITY_GROUP_ID, expected="security group ids like sg-0abc...")
    account: str = setting(kind="text", pattern=ACCOUNT, expected="a 12-digit AWS account id")
    region: str = setting(kind="text", pattern=REGION, expected="an AWS region like us-east-1")
    name_prefix: str = setting(kind="text", pattern=NAME_PREFIX, expected="lower-case letters, digits and -, at most 30")
    # The journal's notifications (stacks/journal.py).
    notify_emails: tuple[str, ...] = setting(kind="texts", pattern=EMAIL, expected="e-mail addresses", allow_empty=True)
    # The snapshot workflow's steps (stacks/workflows/snapshot.py), from the `snapshot_*` keys.
    snapshot: SnapshotSettings

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> StackSettings:
        if not isinstance(context, Mapping):
            raise ValueError("context key 'runbook' is missing or not an object; see cdk.json for the expected settings")
        known = context_keys(cls) | context_keys(SnapshotSettings)
        unknown = sorted(set(context) - known)
        if unknown:
            raise ValueError(f"runbook setting(s) {', '.join(unknown)} unknown; expected only: {', '.join(sorted(known))}")
        values = values_from_context(cls, context)
        prefix = values["name_prefix"]
        settings = cls(
            **values,
            # The functions find the project's SSM documents by the names the stack gives them.
            set_db_host_document=document_name(prefix, SET_DB_HOST_DOCUMENT),
            app_control_document=document_name(prefix, APP_CONTROL_DOCUMENT),
            snapshot=SnapshotSettings(**values_from_context(SnapshotSettings, context)),
        )
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if len(self.subnet_ids) != len(self.availability_zones):
            raise ValueError(
                "runbook settings 'subnet_ids' and 'availability_zones' must have the same length "
                "(one availability zone per subnet, in the same order)"
            )
        for zone in self.availability_zones:
            if not zone.startswith(self.region):
                raise ValueError(f"runbook setting 'availability_zones' has {zone!r}, which is not in region {self.region!r}")
        # The sweep must never delete the copy of a drill still within the time a person may keep it.
        if self.drill_lifetime_hours * 60 <= self.drill_max_keep_minutes:
            raise ValueError(
                "runbook setting 'drill_lifetime_hours' must be longer than 'drill_max_keep_minutes', "
                "or the daily sweep deletes copies a drill is still keeping"
            )
        if self.recordings_list_page_size > 1000:
            raise ValueError("runbook setting 'recordings_list_page_size' must be at most 1000, ListObjectVersions' own limit")
        arn_region, arn_account = self.db_secret_arn.split(":")[3:5]
        if (arn_region, arn_account) != (self.region, self.account):
            raise ValueError(
                f"runbook setting 'db_secret_arn' points at {arn_region}/{arn_account}, "
                f"expected the stack's region/account {self.region}/{self.account}"
            )

    def placeholders(self) -> list[str]:
        """Keys still holding the runbook's example ids (`vpc-xxxxxx`): fine to synth, not to deploy."""
        network = {
            "vpc_id": (self.vpc_id,),
            "subnet_ids": self.subnet_ids,
            "security_group_ids": self.security_group_ids,
            "db_subnet_group_name": (self.db_subnet_group_name,),
        }
        return [key for key, values in network.items() if any("xxxxxx" in value for value in values)]

    def document_name(self, document: ssm_documents.CommandDocument) -> str:
        return document.name(self.name_prefix)

    def lambda_environment(self) -> dict[str, str]:
        """The variables `lambdas/restore_runbook/settings.py` reads, written from the same declaration."""
        return {**environment_of(self, RunbookSettings), **environment_of(self.snapshot)}
