"""IAM statements for the steps that touch the API hosts through SSM.

No generic shell document: the only documents any role may send are the project's own (built from
the scripts in `ssm/`, see stacks/ssm_documents.py), and only to instances carrying the app-host tag
(`ssm:resourceTag/<key>` on the instance resource of SendCommand).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from stacks import nag, ssm_documents
from stacks.functions import StepPermissions
from stacks.permissions.rds import partition_of
from stacks.settings import StackSettings

LIST_COMMANDS_REASON = "ssm:ListCommands supports no resource-level permissions; a retried cutover start finds the command it already sent"
DESCRIBE_INSTANCES_REASON = "ec2:DescribeInstances supports no resource-level permissions; the API hosts are found by their tag at run time"
COMMAND_RESULTS_REASON = (
    "ssm:GetCommandInvocation supports no resource-level permissions; it only reads the results of commands, "
    "and sending them is limited to the project's documents on tagged hosts"
)


class AppHostPermissions:
    """IAM statements for the steps that touch the API hosts through SSM."""

    def __init__(self, settings: StackSettings) -> None:
        self._settings = settings
        self._partition = partition_of(settings.region)

    def document_arn(self, document: ssm_documents.CommandDocument) -> str:
        s = self._settings
        return f"arn:{self._partition}:ssm:{s.region}:{s.account}:document/{s.document_name(document)}"

    def tagged_instances(self) -> str:
        s = self._settings
        return f"arn:{self._partition}:ec2:{s.region}:{s.account}:instance/*"

    def send(self, *documents: ssm_documents.CommandDocument) -> list[iam.PolicyStatement]:
        key, value = self._settings.app_host_tag_key, self._settings.app_host_tag_value
        return [
            iam.PolicyStatement(actions=["ssm:SendCommand"], resources=[self.document_arn(d) for d in documents]),
            iam.PolicyStatement(
                actions=["ssm:SendCommand"],
                resources=[self.tagged_instances()],
                conditions={"StringEquals": {f"ssm:resourceTag/{key}": value}},
            ),
        ]

    def _ack_instances(self) -> dict[str, str]:
        return {
            nag.wildcard_resource(self.tagged_instances()): (
                "SendCommand is allowed on an instance only when it carries the app-host tag "
                f"({self._settings.app_host_tag_key}={self._settings.app_host_tag_value}), with the project's documents only"
            )
        }

    def read_results(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=["ssm:GetCommandInvocation"], resources=["*"])

    def find_hosts(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"])

    def list_commands(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=["ssm:ListCommands"], resources=["*"])

    def step(
        self,
        *,
        send: tuple[ssm_documents.CommandDocument, ...] = (),
        read: bool = False,
        find: bool = False,
        list_sent: bool = False,
        extra: tuple[iam.PolicyStatement, ...] = (),
        acknowledgements: dict[str, str] | None = None,
    ) -> StepPermissions:
        statements: list[iam.PolicyStatement] = []
        acks: dict[str, str] = dict(acknowledgements or {})
        if send:
            statements += self.send(*send)
            acks.update(self._ack_instances())
        if read:
            statements.append(self.read_results())
        if find:
            statements.append(self.find_hosts())
        if list_sent:
            statements.append(self.list_commands())
        if read or find or list_sent:
            reasons = [
                r for r, on in ((COMMAND_RESULTS_REASON, read), (DESCRIBE_INSTANCES_REASON, find), (LIST_COMMANDS_REASON, list_sent)) if on
            ]
            acks[nag.wildcard_resource("*")] = "; ".join(reasons)
        return StepPermissions(statements=[*statements, *extra], acknowledgements=acks)
