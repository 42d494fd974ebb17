"""The rehearsal's shared botocore models: built once, and clients on them behave as before."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from restorectl import shared_service_models

pytestmark = pytest.mark.unit


def a_bucket_listing_in_a_fresh_world() -> tuple[object, list[str]]:
    with mock_aws():  # moto resets boto3's default session: a new Loader, as each rehearsal gets
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="irisx-recordings")
        return s3.meta.service_model, [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_clients_of_two_rehearsals_share_one_service_model_and_each_sees_only_its_own_world() -> None:
    with shared_service_models.installed():
        first_model, first = a_bucket_listing_in_a_fresh_world()
        second_model, second = a_bucket_listing_in_a_fresh_world()
    assert first_model is second_model
    assert first == second == ["irisx-recordings"]  # the second world did not see the first's bucket twice


def test_without_it_each_session_builds_its_own_model() -> None:
    first_model, _ = a_bucket_listing_in_a_fresh_world()
    second_model, _ = a_bucket_listing_in_a_fresh_world()
    assert first_model is not second_model
