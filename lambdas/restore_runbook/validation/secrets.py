"""Database credentials, read inside the step that needs them and never passed between states."""

from __future__ import annotations

import json

from restore_runbook.common import aws
from restore_runbook.common.errors import InvalidInput


def database_credentials(secret_arn: str) -> tuple[str, str]:
    if not secret_arn:
        raise InvalidInput("setting DB_SECRET_ARN is empty; the validate step cannot log in to the database")
    secret = aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    try:
        document = json.loads(secret["SecretString"])
        return str(document["username"]), str(document["password"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f'secret {secret_arn} is not the JSON RDS writes ({{"username": ..., "password": ...}})') from exc
