"""cdk-nag acknowledgements in one place, so each one carries a reason a reviewer can judge.

cdk-nag 3 uses CDK's native `Validations` API: a finding on a construct, or below it, is
acknowledged with its exact id (`AwsSolutions-IAM5[Resource::...]`); there is no prefix matching.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

MIN_REASON_LENGTH = 20


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"the acknowledgement of {rule_id} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def wildcard_resource(resource: str) -> str:
    """The id cdk-nag gives a wildcard resource in an IAM policy."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"


XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; CDK adds them with Resource * when tracing is active"
)
