"""The project's SSM Command documents on the API hosts (cutover and rollback), from the scripts in `ssm/`.

What each step may send, and to which hosts, is in stacks/permissions/hosts.py.
"""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks import ssm_documents
from stacks.settings import StackSettings


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
