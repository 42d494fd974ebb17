"""Cutover and rollback on the API hosts: the project's SSM Command documents and what each step may do.

No generic shell document: the only documents any role may send are the two defined here (from the
scripts in `ssm/`, see stacks/ssm_documents.py), and only to instances carrying the app-host tag
(`ssm:resourceTag/<key>` on the instance resource of SendCommand).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks import nag, ssm_documents
from stacks.arns import RdsArns, partition_of
from stacks.fences import deny_changes_to_source
from stacks.settings import StackSettings
from stacks.workflow import FunctionDefaults, StepPermissions, Workflow

LIST_COMMANDS_REASON = "ssm:ListCommands supports no resource-level permissions; a retried cutover start finds the command it already sent"
DESCRIBE_INSTANCES_REASON = "ec2:DescribeInstances supports no resource-level permissions; the API hosts are found by their tag at run time"
COMMAND_RESULTS_REASON = (
    "ssm:GetCommandInvocation supports no resource-level permissions; it only reads the results of commands, "
    "and sending them is limited to the project's documents on tagged hosts"
)


class AppHostDocuments(Construct):
    """The `set-db-host` and `app-control` Command documents, with explicit names the Lambda settings carry."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.documents: dict[str, ssm.CfnDocument] = {}
        for document in ssm_documents.DOCUMENTS:
            self.documents[document.key] = ssm.CfnDocument(
                self,
                "".join(part.title() for part in document.key.split("-")),
                name=settings.document_name(document),
                document_type="Command",
                document_format="JSON",
                content=document.content(),
                update_method="NewVersion",
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

    def restore_steps(self, describe_source: StepPermissions) -> dict[str, StepPermissions]:
        """The cutover steps of the `restore` workflow and its automatic rollback."""
        set_db_host, app_control = ssm_documents.SET_DB_HOST, ssm_documents.APP_CONTROL
        return {
            "start_cutover": self.step(send=(set_db_host,), find=True, list_sent=True),
            "check_app_command": self.step(read=True),
            # Health only reads: deletion protection for the new production is ProtectNewProduction's.
            "check_app_health": self.step(send=(app_control,), read=True),
            # Reads the cutover's own output for each host's previous DB_HOST; the source's endpoint as fallback.
            # Without a cutover record (its start failed after sending) every tagged host is sent back.
            "revert_cutover": self.step(
                send=(set_db_host,),
                read=True,
                find=True,
                extra=tuple(describe_source.statements),
                acknowledgements=dict(describe_source.acknowledgements),
            ),
            "explain_rollback_failure": StepPermissions(statements=[]),
        }


class RollbackWorkflow(Construct):
    """The `rollback` workflow (statemachines/rollback.asl.json): the runbook's Rollback Procedure."""

    WORKFLOW_NAME = "rollback"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        defaults: FunctionDefaults,
        asl_path: Path,
        manifest_path: Path,
        journal_steps: Mapping[str, StepPermissions],
    ) -> None:
        super().__init__(scope, construct_id)
        arns = RdsArns.for_settings(settings)
        hosts = AppHostPermissions(settings)
        describe_db = iam.PolicyStatement(actions=["rds:DescribeDBInstances", "rds:ListTagsForResource"], resources=[arns.db()])
        describe_ack = {
            nag.wildcard_resource(arns.db()): ("Read-only describe on RDS instances: the restored instance's name is given per execution")
        }
        delete = iam.PolicyStatement(
            actions=["rds:DeleteDBInstance"],
            resources=[arns.db()],
            conditions={"StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}},
        )
        deny_source = deny_changes_to_source(settings)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        self.workflow = Workflow(
            self,
            "Workflow",
            workflow_name=self.WORKFLOW_NAME,
            asl_path=asl_path,
            manifest=manifest,
            steps={
                "check_rollback_input": hosts.step(find=True, extra=(describe_db,), acknowledgements=describe_ack),
                "stop_app_hosts": hosts.step(send=(ssm_documents.APP_CONTROL,)),
                "check_app_command": hosts.step(read=True),
                "delete_restored_instance": StepPermissions(
                    statements=[describe_db, delete, *self._final_snapshot(arns, settings), deny_source],
                    acknowledgements={
                        **describe_ack,
                        nag.wildcard_resource(arns.snapshot("*-final-*")): (
                            "DeleteDBInstance with a final snapshot creates (and copies the instance's tags to) a snapshot "
                            "named <instance>-final-<time>, the instance named per execution; snapshots under that "
                            "pattern only, never tagged as the snapshot workflow's (explicit Deny)"
                        ),
                    },
                ),
                "point_hosts_back": hosts.step(send=(ssm_documents.SET_DB_HOST,)),
                "check_app_health": hosts.step(send=(ssm_documents.APP_CONTROL,), read=True),
                "explain_rollback_failure": StepPermissions(statements=[]),
                # Journal, per-source lock and notification, the same as restore's (stacks/journal.py).
                **journal_steps,
            },
            defaults=defaults,
        )
        self.state_machine = self.workflow.state_machine

    @staticmethod
    def _final_snapshot(arns: RdsArns, settings: StackSettings) -> list[iam.PolicyStatement]:
        """What DeleteDBInstance with FinalDBSnapshotIdentifier needs: rds:CreateDBSnapshot on the instance
        (only one carrying the management tag) and on the new snapshot, and rds:AddTagsToResource on that
        snapshot when the instance copies its tags to snapshots."""
        final_snapshots = arns.snapshot("*-final-*")
        managed = {"StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}}
        return [
            # A successful cutover turns deletion protection on for the copy; the rollback turns it off
            # (only on an instance this tool created; the source is denied) once the hosts are back.
            iam.PolicyStatement(actions=["rds:ModifyDBInstance"], resources=[arns.db()], conditions=managed),
            iam.PolicyStatement(
                actions=["rds:CreateDBSnapshot"],
                resources=[arns.db()],
                conditions={"StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}},
            ),
            iam.PolicyStatement(actions=["rds:CreateDBSnapshot"], resources=[final_snapshots]),
            # The copy's tags, management tag included, copied to the final snapshot (CopyTagsToSnapshot).
            iam.PolicyStatement(
                actions=["rds:AddTagsToResource"],
                resources=[final_snapshots],
                conditions={"StringEquals": {f"aws:RequestTag/{settings.management_tag_key}": settings.management_tag_value}},
            ),
            # The snapshot workflow's retention deletes snapshots tagged as its own: a final snapshot never may be.
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["rds:AddTagsToResource"],
                resources=[arns.snapshot()],
                conditions={"StringEquals": {"aws:RequestTag/irisx-restore:workflow": "snapshot"}},
            ),
        ]
