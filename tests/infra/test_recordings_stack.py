"""recordings-restore as deployed: its work bucket, S3 permissions on the configured buckets only,
one role that may delete a version, and what its Distributed Map needs from the state machine role."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from stacks.settings import StackSettings
from stacks.workflow import handler_module

from .conftest import REPO_ROOT, Synthesized
from .test_stack import as_list, function_role, role_policies, roles_allowing

pytestmark = pytest.mark.infra

# Everything a recordings role may do in S3; anything else (a bucket policy, a lifecycle, versioning) is out.
S3_ACTIONS = {
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketVersioning",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
}


def work_bucket(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    ((bucket_id, bucket),) = [
        (k, v) for k, v in synthesized.of_type("AWS::S3::Bucket").items() if k.startswith("RecordingsRestoreWorkBucket")
    ]
    return bucket_id, bucket


def configured(synthesized: Synthesized) -> tuple[list[str], list[str]]:
    buckets = synthesized.settings.recordings_buckets
    return [f"arn:aws:s3:::{b}" for b in buckets], [f"arn:aws:s3:::{b}/*" for b in buckets]


def test_delete_object_version_is_in_exactly_one_role_the_undeletes_and_only_on_the_configured_buckets(synthesized: Synthesized) -> None:
    undelete = function_role(synthesized, "undelete_recordings_batch")
    assert roles_allowing(synthesized, "s3:DeleteObjectVersion") == {undelete}
    _, objects = configured(synthesized)
    (statement,) = [
        s for s in role_policies(synthesized)[undelete] if s["Effect"] == "Allow" and "s3:DeleteObjectVersion" in as_list(s["Action"])
    ]
    assert as_list(statement["Resource"]) == objects
    assert not any("s3:DeleteObjectVersion" in as_list(s["Action"]) for s in _state_machine_statements(synthesized))


def test_recordings_roles_reach_only_the_configured_buckets_and_the_work_bucket(synthesized: Synthesized) -> None:
    buckets, objects = configured(synthesized)
    bucket_id, _ = work_bucket(synthesized)
    work = {"Fn::GetAtt": [bucket_id, "Arn"]}
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        if not function["Properties"]["Description"].startswith("recordings-restore workflow:"):
            continue
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        for statement in role_policies(synthesized)[role]:
            actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
            if not actions:
                continue
            assert set(actions) <= S3_ACTIONS, (role, actions)
            for resource in as_list(statement["Resource"]):
                if isinstance(resource, str):
                    assert resource in buckets + objects, (role, resource)
                elif resource != work:
                    # the work bucket's own objects, under plans/ or results/ only
                    joined = resource["Fn::Join"][1]
                    assert joined[0] == work and joined[1] in ("/plans/*", "/results/*"), (role, resource)


def test_only_the_copy_step_writes_to_the_recordings_buckets_and_only_the_planner_lists_versions(
    synthesized: Synthesized,
) -> None:
    writers = {function_role(synthesized, "apply_recordings_batch")}
    _, objects = configured(synthesized)
    for action in ("s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject"):
        on_recordings = {
            role
            for role, statements in role_policies(synthesized).items()
            for s in statements
            if s["Effect"] == "Allow" and action in as_list(s["Action"]) and set(map(str, as_list(s["Resource"]))) & set(objects)
        }
        assert on_recordings == writers, action
    # ListObjectVersions is the planner's, and the drill's recordings check's (it picks keys with an older version)
    assert roles_allowing(synthesized, "s3:ListBucketVersions") == {
        function_role(synthesized, "plan_recordings_page"),
        function_role(synthesized, "check_drill_recordings"),
    }


def test_the_work_bucket_is_private_encrypted_ssl_only_and_expires_plans_and_results(synthesized: Synthesized) -> None:
    bucket_id, bucket = work_bucket(synthesized)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    expirations = {r["Prefix"]: r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"] if "Prefix" in r}
    # a drill removes its scratch copies itself; the rule only catches what a crashed drill left
    assert expirations == {"plans/": 90, "results/": 90, "drill-scratch/": 1}
    (policy,) = [p for p in synthesized.of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def _state_machine_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    (role,) = [
        m["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        for m in synthesized.of_type("AWS::StepFunctions::StateMachine").values()
        if m["Properties"]["StateMachineName"] == "irisx-restore-recordings-restore"
    ]
    return role_policies(synthesized)[role]


def test_the_distributed_map_may_run_its_own_children_and_read_the_plan(synthesized: Synthesized) -> None:
    s = synthesized.settings
    statements = _state_machine_statements(synthesized)
    base = f"arn:aws:states:{s.region}:{s.account}"

    def resources_of(action: str) -> list[Any]:
        return [r for st in statements if st["Effect"] == "Allow" and action in as_list(st["Action"]) for r in as_list(st["Resource"])]

    assert resources_of("states:StartExecution") == [f"{base}:stateMachine:irisx-restore-recordings-restore"]
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert resources_of(action) == [f"{base}:execution:irisx-restore-recordings-restore/*"], action
    bucket_id, _ = work_bucket(synthesized)
    assert resources_of("s3:GetObject") == [{"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/plans/*"]]}]


def test_the_recordings_functions_read_the_work_bucket_and_the_buckets_from_what_the_stack_writes(synthesized: Synthesized) -> None:
    lambdas = str(REPO_ROOT / "lambdas")
    if lambdas not in sys.path:
        sys.path.insert(0, lambdas)
    from restore_runbook.settings import RunbookSettings

    bucket_id, _ = work_bucket(synthesized)
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        if handler_module(function["Properties"]["Handler"]) == "plan_recordings_page":
            assert function["Properties"]["Environment"]["Variables"]["RECORDINGS_WORK_BUCKET"] == {"Ref": bucket_id}
    read = RunbookSettings.from_env({**synthesized.settings.lambda_environment(), "RECORDINGS_WORK_BUCKET": "irisx-work"})
    assert read.recordings_work_bucket == "irisx-work"
    assert read.recordings_buckets == synthesized.settings.recordings_buckets == ("irisx-prod-recordings-672e7c49", "irisx-recordings")
    assert read.recordings_tolerated_failures == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"recordings_buckets": ["Not_A_Bucket"]}, "recordings_buckets"),
        ({"recordings_tolerated_failures": -1}, "recordings_tolerated_failures"),
        ({"recordings_list_page_size": 1001}, "recordings_list_page_size"),
        ({"recordings_work_bucket": "chosen-by-hand"}, "recordings_work_bucket"),
    ],
)
def test_recordings_settings_are_checked_by_name(runbook_context: dict[str, Any], change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        StackSettings.from_context({**runbook_context, **change})


def _scratch(bucket_id: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/drill-scratch/*"]]}


def test_the_drills_recordings_check_reads_the_configured_buckets_and_writes_only_under_the_scratch_prefix(
    synthesized: Synthesized,
) -> None:
    buckets, objects = configured(synthesized)
    bucket_id, _ = work_bucket(synthesized)
    work, scratch = {"Fn::GetAtt": [bucket_id, "Arn"]}, _scratch(bucket_id)
    statements = role_policies(synthesized)[function_role(synthesized, "check_drill_recordings")]
    allowed: dict[str, list[Any]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                allowed.setdefault(action, []).extend(as_list(statement["Resource"]))
    # Reading versions (and their tags, which the copy keeps) of the configured buckets, nothing else there.
    for action in ("s3:ListBucketVersions", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"):
        assert {str(r) for r in allowed[action]} <= set(buckets + objects), action
    # Every action that writes or deletes names the scratch prefix of the work bucket and nothing else.
    for action in ("s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert allowed[action] == [scratch], action
    assert "s3:DeleteObjectVersion" not in allowed
    assert [r for r in allowed["s3:GetObject"] if not isinstance(r, str)] == [scratch]
    assert work in allowed["s3:ListBucket"]


def test_the_drills_scratch_removal_may_list_and_delete_under_the_scratch_prefix_only(synthesized: Synthesized) -> None:
    bucket_id, _ = work_bucket(synthesized)
    statements = role_policies(synthesized)[function_role(synthesized, "remove_drill_scratch")]
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert sorted((as_list(s["Action"])[0], json.dumps(s["Resource"], sort_keys=True)) for s in s3_statements) == sorted(
        [
            ("s3:DeleteObject", json.dumps(_scratch(bucket_id), sort_keys=True)),
            ("s3:ListBucket", json.dumps({"Fn::GetAtt": [bucket_id, "Arn"]}, sort_keys=True)),
        ]
    )
    (listing,) = [s for s in s3_statements if as_list(s["Action"]) == ["s3:ListBucket"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["drill-scratch/*"]}}
