"""Plain-string ARNs for the resources the runbook touches.

The stack has a concrete account and region (from settings), so ARNs are written out instead of
built from tokens: policies read the same in the template, in `cdk diff` and in nag acknowledgements.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacks.settings import StackSettings


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class RdsArns:
    partition: str
    region: str
    account: str

    @classmethod
    def for_settings(cls, settings: StackSettings) -> RdsArns:
        return cls(partition_of(settings.region), settings.region, settings.account)

    def _arn(self, resource_type: str, name: str) -> str:
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{resource_type}:{name}"

    def db(self, name: str = "*") -> str:
        return self._arn("db", name)

    def snapshot(self, name: str = "*") -> str:
        return self._arn("snapshot", name)

    def auto_backup(self, name: str = "*") -> str:
        return self._arn("auto-backup", name)

    def subnet_group(self, name: str) -> str:
        return self._arn("subgrp", name)

    def parameter_group(self, name: str = "*") -> str:
        return self._arn("pg", name)

    def option_group(self, name: str = "*") -> str:
        return self._arn("og", name)
