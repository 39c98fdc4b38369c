"""The stage template: linted as written and as submitted, applied to moto, torn down by the rule
of its stage. (The whole deploy, Chalice and a batch included, is test_deploy.py.)"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from animl_local import moto_cloudformation, signing_key, stack
from animl_local.aws_calls import allowed
from animl_local.aws_stage import Stage
from animl_local.deploy import (
    DeployError,
    bucket_exposure,
    deploy,
    refuse_buckets_outside_the_stack,
    teardown,
)
from animl_local.moto_s3_owner import expected_owners_enforced
from functions.platform.settings import Settings

REGION = "us-west-2"
ACCOUNT = "123456789012"
FUNCTIONS = ["check_inference", "ingest_delete", "ingest_image_group", "inspect_archive",
             "on_upload", "provision_inference", "record_batch_error", "summarize_batch",
             "teardown_inference", "update_batch_status"]


@pytest.fixture
def aws() -> Iterator[None]:
    moto_cloudformation.install()
    with mock_aws():
        yield


def rendered(settings: Settings) -> str:
    arns = {f: stack.function_arn(settings, ACCOUNT, f)
            for f in stack.state_machine_functions(FUNCTIONS)}
    return stack.render_template(settings, arns)


def parameters(settings: Settings, **overrides: str) -> dict[str, str]:
    key = signing_key.ensure_signing_key(boto3.client("ssm", region_name=REGION), settings.stage)
    arns = [stack.function_arn(settings, ACCOUNT, f)
            for f in stack.state_machine_functions(FUNCTIONS)]
    return {"Stage": settings.stage, **stack.stage_settings(settings.stage)["parameters"],
            "SigningPublicKey": key.pem, "SigningKeyFingerprint": key.fingerprint,
            "IngestBatchFunctionArns": ",".join(arns), **overrides}


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("cfn-lint")
    return subprocess.run([str(executable), str(path)], capture_output=True, text=True)


@pytest.mark.slow  # cfn-lint in a process of its own, three templates
def test_the_template_lints_as_written_and_as_submitted(tmp_path: Path) -> None:
    for stage in ("dev", "prod"):
        submitted = tmp_path / f"{stage}.json"
        submitted.write_text(rendered(Settings(stage=stage, region=REGION)))
        done = cfn_lint(submitted)
        assert done.returncode == 0, done.stdout
    done = cfn_lint(stack.TEMPLATE_PATH)
    assert done.returncode == 0, done.stdout


@pytest.mark.slow
def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    template = yaml.safe_load(stack.TEMPLATE_PATH.read_text())
    template["Resources"]["ServingBucket"]["Properties"]["BucketEncryptoin"] = {}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(template))
    assert cfn_lint(broken).returncode != 0


def test_the_submitted_template_carries_the_filled_definition() -> None:
    body = json.loads(rendered(Settings(stage="dev", region=REGION)))
    definition = json.loads(body["Resources"]["IngestBatch"]["Properties"]["DefinitionString"])
    assert "${" not in json.dumps(definition)
    resources = json.dumps(definition)
    assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:animl-ingest-dev-ingest_image_group" \
        in resources
    assert len(json.dumps(body, separators=(",", ":"))) <= stack.TEMPLATE_BODY_MAX_BYTES


def test_every_stage_sets_exactly_the_parameters_the_template_lacks() -> None:
    declared = yaml.safe_load(stack.TEMPLATE_PATH.read_text())["Parameters"]
    # Filled by deploy itself, not by a stage's settings.
    by_deploy = {"Stage", "SigningPublicKey", "SigningKeyFingerprint", "IngestBatchFunctionArns"}
    for name, entry in json.loads(stack.STAGE_SETTINGS_PATH.read_text()).items():
        given = set(entry["parameters"])
        assert given <= set(declared) - by_deploy, name
        required = {p for p, d in declared.items() if "Default" not in d} - by_deploy
        assert required <= given, name


def test_an_unknown_stage_is_refused_with_the_way_to_add_it() -> None:
    with pytest.raises(stack.StackError, match="no entry in infrastructure/stages.json"):
        stack.stage_settings("qa")


def test_the_state_machine_role_allows_only_its_own_resources() -> None:
    body = json.loads(rendered(Settings(stage="dev", region=REGION)))
    [policy] = body["Resources"]["IngestBatchRole"]["Properties"]["Policies"]
    text = json.dumps(policy)
    assert '"*"' not in text and "Resource\": \"*" not in text
    actions = sorted(a for s in policy["PolicyDocument"]["Statement"]
                     for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    # s3:GetObject twice: the batch work area (the Map's ItemReader) and the ingestion bucket
    # (DeleteArchive's conditional delete on the archive's ETag).
    assert actions == ["lambda:InvokeFunction", "s3:DeleteObject", "s3:GetObject",
                       "s3:GetObject", "states:DescribeExecution", "states:RedriveExecution",
                       "states:StartExecution", "states:StopExecution"]


def test_a_base_station_principal_may_put_into_the_ingestion_bucket_only_when_named(
        aws: None) -> None:
    settings = Settings(stage="dev", region=REGION)
    cfn, s3 = boto3.client("cloudformation", region_name=REGION), boto3.client("s3",
                                                                              region_name=REGION)
    name = stack.stack_name(settings)
    principal = f"arn:aws:iam::{ACCOUNT}:user/base-stations"
    assert stack.apply(cfn, name, rendered(settings), parameters(
        settings, BaseStationPrincipal=principal)) == "created"
    assert stack.apply(cfn, name, rendered(settings), parameters(
        settings, BaseStationPrincipal=principal)) == "unchanged"
    policy = json.loads(s3.get_bucket_policy(Bucket=settings.ingestion_bucket)["Policy"])
    assert policy["Statement"] == [tls_only(settings.ingestion_bucket), {
        "Sid": "BaseStationsPutImages", "Effect": "Allow", "Principal": {"AWS": principal},
        "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{settings.ingestion_bucket}/*"}]
    # (Without one there is no policy at all: see test_deploy. Dropping the principal later
    # deletes the policy on CloudFormation; moto's update keeps a resource whose condition turned
    # false, so that transition is not tested here.)


def tls_only(bucket: str) -> dict[str, Any]:
    """The statement AWS documents for a bucket that takes requests over TLS only."""
    return {"Sid": "DenyRequestsWithoutTls", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_every_real_stage_keeps_tls_required() -> None:
    declared = yaml.safe_load(stack.TEMPLATE_PATH.read_text())["Parameters"]["RequireTls"]
    assert declared["Default"] == "true"
    for name, entry in json.loads(stack.STAGE_SETTINGS_PATH.read_text()).items():
        assert entry["parameters"].get("RequireTls", "true") == "true", name
    assert stack.MOTO_PARAMETERS == {"RequireTls": "false"}  # moto's only departure


@pytest.mark.parametrize("stage_name", sorted(json.loads(stack.STAGE_SETTINGS_PATH.read_text())))
def test_every_bucket_refuses_requests_without_tls(aws: None, stage_name: str) -> None:
    settings = Settings(stage=stage_name, region=REGION)
    cfn, s3 = (boto3.client("cloudformation", region_name=REGION),
               boto3.client("s3", region_name=REGION))
    assert stack.apply(cfn, stack.stack_name(settings), rendered(settings),
                       parameters(settings)) == "created"
    for bucket in settings.buckets:
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert statements[0] == tls_only(bucket), bucket
    serving = json.loads(s3.get_bucket_policy(Bucket=settings.serving_bucket)["Policy"])
    assert [s["Sid"] for s in serving["Statement"]] == ["DenyRequestsWithoutTls",
                                                        "OnlyTheServingDistributionReads"]


def test_without_tls_required_only_the_serving_bucket_has_a_policy(aws: None) -> None:
    settings = Settings(stage="dev", region=REGION)
    cfn, s3 = (boto3.client("cloudformation", region_name=REGION),
               boto3.client("s3", region_name=REGION))
    stack.apply(cfn, stack.stack_name(settings), rendered(settings),
                parameters(settings, **stack.MOTO_PARAMETERS))
    for bucket in settings.buckets:
        if bucket == settings.serving_bucket:
            statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
            assert [s["Sid"] for s in statements] == ["OnlyTheServingDistributionReads"]
        else:
            with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
                s3.get_bucket_policy(Bucket=bucket)


def _role_policy_as_deployed(settings: Settings) -> dict[str, Any]:
    """IngestBatchRole's policy with the pseudo parameters CloudFormation fills in."""
    body = json.loads(rendered(settings))
    [policy] = body["Resources"]["IngestBatchRole"]["Properties"]["Policies"]
    text = json.dumps(policy["PolicyDocument"])
    for name, value in {"AWS::Partition": "aws", "AWS::Region": REGION,
                        "AWS::AccountId": ACCOUNT, "Stage": settings.stage}.items():
        text = text.replace("${" + name + "}", value)
    document = json.loads(text)
    for statement in document["Statement"]:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        # Fn::Sub (now filled) -> its string; the rest (Ref, ${Bucket.Arn}) is not needed here.
        statement["Resource"] = [r["Fn::Sub"] if isinstance(r, dict) and "Fn::Sub" in r
                                 else r for r in resources
                                 if isinstance(r, str) or "Fn::Sub" in r]
    return document


def test_the_state_machine_role_reaches_its_distributed_map_children_only() -> None:
    """AWS's formats: executions `execution:<machine>:<name>`; a Distributed Map's children run
    as `stateMachine:<machine>/<map run label or id>`, so `execution:<machine>/<label>:<id>`.
    The actions are those of AWS's "IAM policies for using Distributed Map states"."""
    settings = Settings(stage="dev", region=REGION)
    document = _role_policy_as_deployed(settings)
    machine = settings.state_machine_arn(ACCOUNT)
    execution = settings.execution_arn(ACCOUNT, "batch-1")
    child = machine.replace(":stateMachine:", ":execution:") + "/IngestImages:0f1e2d3c-aa"
    other = execution.replace("-dev-", "-prod-")
    other_child = child.replace("-dev-", "-prod-")
    assert allowed(document, "states:StartExecution", machine)
    assert not allowed(document, "states:StartExecution", machine.replace("-dev-", "-prod-"))
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert allowed(document, action, execution)
        assert allowed(document, action, child)
        assert not allowed(document, action, other)
        assert not allowed(document, action, other_child)
    # Re-driving a failed execution re-drives its Map Run's failed STANDARD children
    # (RedriveExecution on each, by this role); the parent itself is the operator's to re-drive.
    assert allowed(document, "states:RedriveExecution", child)
    assert not allowed(document, "states:RedriveExecution", other_child)
    assert not allowed(document, "states:RedriveExecution", execution)


def test_the_signing_key_is_made_once_and_never_leaves_ssm(aws: None) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    first = signing_key.ensure_signing_key(ssm, "dev")
    again = signing_key.ensure_signing_key(ssm, "dev")
    assert first == again
    stored = ssm.get_parameter(Name="/images/cloudfront-distribution-privatekey-dev",
                               WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString"
    assert stored["Value"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert "PRIVATE" not in repr(first)
    assert first.pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_the_private_key_stays_out_of_debug_logs(aws: None,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    with caplog.at_level(logging.DEBUG):
        signing_key.ensure_signing_key(ssm, "dev")  # made and stored
        signing_key.ensure_signing_key(ssm, "dev")  # read back
        ssm.describe_parameters()
        logged = caplog.text
    stored = ssm.get_parameter(Name="/images/cloudfront-distribution-privatekey-dev",
                               WithDecryption=True)["Parameter"]["Value"]
    body = stored.splitlines()[5]
    assert "Response body" in logged  # the wire log was on
    assert body not in logged and body not in logged.replace("\\n", "\n")


def test_a_stage_bucket_made_outside_the_stack_is_refused_before_anything_changes(
        aws: None) -> None:
    settings = Settings(stage="dev", region=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=settings.serving_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    stage = Stage(settings, boto3.session.Session(region_name=REGION))
    with pytest.raises(DeployError, match=f"{settings.serving_bucket} already exist outside"):
        refuse_buckets_outside_the_stack(stage)


ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}


def api_prerequisites(stage: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=f"/api/url-{stage}", Value="https://api.example", Type="String")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"api-key-{stage}", SecretString=json.dumps({"apikey": "k"}))


def nothing_changed(settings: Settings) -> bool:
    cfn = boto3.client("cloudformation", region_name=REGION)
    ssm = boto3.client("ssm", region_name=REGION)
    names = [p["Name"] for p in ssm.describe_parameters()["Parameters"]]
    return (stack.stack_status(cfn, stack.stack_name(settings)) is None
            and names == [settings.api_url_parameter])  # no signing key made


def open_up(s3: Any, bucket: str, how: str) -> None:
    everyone = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    if how == "policy":
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(everyone))
    if how == "acl":
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    if how == "partly blocked":
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            **ALL_BLOCKED, "RestrictPublicBuckets": False})
    elif how != "not blocked":
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)


@pytest.mark.parametrize(("how", "reason"), [
    ("not blocked", "Block Public Access off (BlockPublicAcls, IgnorePublicAcls, "
                    "BlockPublicPolicy, RestrictPublicBuckets)"),
    ("partly blocked", "Block Public Access off (RestrictPublicBuckets)"),
    ("policy", "its bucket policy allows everyone"),
    ("acl", "its ACL grants AllUsers"),
])
def test_a_public_stage_bucket_is_refused_before_anything_changes(
        aws: None, how: str, reason: str) -> None:
    settings = Settings(stage="dev", region=REGION)
    api_prerequisites("dev")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=settings.dead_letter_bucket,
                     CreateBucketConfiguration={"LocationConstraint": REGION})
    open_up(s3, settings.dead_letter_bucket, how)
    stage = Stage(settings, boto3.session.Session(region_name=REGION))
    with pytest.raises(DeployError) as refused:
        deploy(stage, run_chalice=False)
    assert f"{settings.dead_letter_bucket} is public: {reason}" in str(refused.value)
    assert nothing_changed(settings)


def test_a_stage_bucket_opened_after_its_stack_was_made_is_refused(aws: None) -> None:
    settings = Settings(stage="dev", region=REGION)
    api_prerequisites("dev")
    cfn, s3 = (boto3.client("cloudformation", region_name=REGION),
               boto3.client("s3", region_name=REGION))
    stack.apply(cfn, stack.stack_name(settings), rendered(settings), parameters(settings))
    stage = Stage(settings, boto3.session.Session(region_name=REGION))
    for bucket in settings.buckets:  # as the stack made them: ours and private
        assert bucket_exposure(stage.client("s3"), bucket, stage.account) is None
    s3.delete_public_access_block(Bucket=settings.serving_bucket)  # someone, by hand
    with pytest.raises(DeployError, match=f"{settings.serving_bucket} is public: Block Public"):
        deploy(stage, run_chalice=False)


def test_a_stage_bucket_of_another_account_is_refused_before_anything_changes(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(stage="dev", region=REGION)
    api_prerequisites("dev")
    with monkeypatch.context() as env:  # someone else took the predictable name first
        env.setenv("MOTO_ACCOUNT_ID", "999988887777")
        theirs = boto3.client("s3", region_name=REGION)
        theirs.create_bucket(Bucket=settings.serving_bucket,
                             CreateBucketConfiguration={"LocationConstraint": REGION})
        theirs.put_public_access_block(Bucket=settings.serving_bucket,
                                       PublicAccessBlockConfiguration=ALL_BLOCKED)
    stage = Stage(settings, boto3.session.Session(region_name=REGION))
    with expected_owners_enforced(), pytest.raises(DeployError) as refused:
        deploy(stage, run_chalice=False)
    assert (f"{settings.serving_bucket} exists but is not owned by account {ACCOUNT}"
            in str(refused.value))
    assert nothing_changed(settings)


def test_a_failed_stack_says_which_resource_failed_and_why() -> None:
    class Events:
        def describe_stack_events(self, StackName: str) -> dict[str, Any]:  # boto3
            return {"StackEvents": [  # newest first, as CloudFormation answers
                {"LogicalResourceId": "animl-ingest-dev", "ResourceStatus": "ROLLBACK_COMPLETE"},
                {"LogicalResourceId": "ImagesUrlParameter", "ResourceStatus": "CREATE_FAILED",
                 "ResourceType": "AWS::SSM::Parameter",
                 "ResourceStatusReason": "Resource creation cancelled"},
                {"LogicalResourceId": "ServingDistribution", "ResourceStatus": "CREATE_FAILED",
                 "ResourceType": "AWS::CloudFront::Distribution",
                 "ResourceStatusReason": "Invalid request provided: AWS::CloudFront::..."},
            ]}

    assert stack.failure_reason(Events(), "animl-ingest-dev") == (
        "ServingDistribution (AWS::CloudFront::Distribution): Invalid request provided: "
        "AWS::CloudFront::...")


@pytest.mark.parametrize("stage_name, kept", [("dev", False), ("prod", True)])
def test_teardown_removes_the_stack_and_keeps_data_only_where_the_stage_says(
        aws: None, stage_name: str, kept: bool) -> None:
    settings = Settings(stage=stage_name, region=REGION)
    cfn, s3 = (boto3.client("cloudformation", region_name=REGION),
               boto3.client("s3", region_name=REGION))
    stack.apply(cfn, stack.stack_name(settings), rendered(settings),
                parameters(settings, **stack.MOTO_PARAMETERS))  # objects are written below
    s3.put_object(Bucket=settings.serving_bucket, Key="original/x.jpg", Body=b"image")
    s3.put_object(Bucket=settings.batch_work_bucket, Key="batches/b/manifest.json", Body=b"{}")

    stage = Stage(settings, boto3.session.Session(region_name=REGION))
    result = teardown(stage, run_chalice=False)

    data = [b for b in settings.buckets if b != settings.batch_work_bucket]
    left = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert result["bucketsKept"] == (data if kept else [])
    assert left == (set(data) if kept else set())
    assert stack.stack_status(cfn, stack.stack_name(settings)) is None
    ssm = boto3.client("ssm", region_name=REGION)
    assert [p["Name"] for p in ssm.describe_parameters()["Parameters"]] == []
    if kept:
        assert s3.get_object(Bucket=settings.serving_bucket,
                             Key="original/x.jpg")["Body"].read() == b"image"


def test_a_new_signing_key_replaces_the_old_one(aws: None) -> None:
    settings = Settings(stage="dev", region=REGION)
    cfn = boto3.client("cloudformation", region_name=REGION)
    ssm, cloudfront = (boto3.client("ssm", region_name=REGION),
                       boto3.client("cloudfront", region_name=REGION))
    name = stack.stack_name(settings)
    stack.apply(cfn, name, rendered(settings), parameters(settings))

    signing_key.delete_signing_key(ssm, "dev")  # an operator rotates the key
    rotated = parameters(settings)
    assert stack.apply(cfn, name, rendered(settings), rotated) == "updated"

    # (CloudFormation then points the key group and the key-id parameter at the new key; moto
    # does not update resources whose own properties did not change, so that is not tested.)
    [summary] = cloudfront.list_public_keys()["PublicKeyList"]["Items"]
    key = cloudfront.get_public_key(Id=summary["Id"])["PublicKey"]["PublicKeyConfig"]
    assert key["EncodedKey"].strip() == rotated["SigningPublicKey"].strip()
    assert key["Name"].endswith(rotated["SigningKeyFingerprint"])
