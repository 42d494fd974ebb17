"""What the journal steps of any workflow may do: the journal table, the lock, the notification topic.

Each workflow gets its own record-start, take-lock and record-outcome functions (the Workflow
construct builds one per workflow); the permissions are the same for all of them and scoped to this
stack's table, topic and executions.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from stacks import nag
from stacks.functions import StepPermissions
from stacks.journal import Journal
from stacks.permissions.rds import partition_of
from stacks.settings import StackSettings


def executions_arn(settings: StackSettings) -> str:
    """Every execution of this stack's state machines (all are named `<name_prefix>-<workflow>`)."""
    return f"arn:{partition_of(settings.region)}:states:{settings.region}:{settings.account}:execution:{settings.name_prefix}-*"


def journal_steps(journal: Journal, settings: StackSettings) -> dict[str, StepPermissions]:
    """The journal steps (handler module -> permissions), for any workflow's `steps`."""
    executions = executions_arn(settings)
    describe_holder = iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
    publish = journal.publish_statements()
    return {
        "record_start": StepPermissions(statements=[journal.table_statement(["dynamodb:PutItem"])]),
        "take_lock": StepPermissions(
            statements=[journal.table_statement(["dynamodb:PutItem", "dynamodb:GetItem"]), describe_holder],
            acknowledgements={
                nag.wildcard_resource(executions): (
                    "A lock names its holder execution only at run time; DescribeExecution is limited to "
                    "executions of this stack's state machines (name prefix)"
                )
            },
        ),
        # A success whose end record failed: only the lock's own item and the topic.
        "release_without_record": StepPermissions(statements=[journal.table_statement(["dynamodb:DeleteItem"]), *publish]),
        "record_outcome": StepPermissions(
            statements=[
                journal.table_statement(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
                *publish,
            ]
        ),
    }
