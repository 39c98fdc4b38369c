"""`animl-ingest deploy --stage S`: the whole stage from one command, and its teardown.

Chalice deploys the Lambdas, the S3 notification and the EventBridge rules; this module adds what
Chalice knows nothing of: the stage's buckets and parameters (created when missing), and the
IngestBatch state machine with its role, its `${...}` placeholders filled from the ARNs Chalice
recorded in `.chalice/deployed/<stage>.json`, and `IngestDelete-<stage>`, a copy of Chalice's
`ingest_delete` under the one name the API's stopBatch may invoke. Running it again updates in
place. The API URL and key belong to the API: they are read and checked, never created.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from animl_local.aws_stage import Stage
from functions.settings import APP_NAME
from functions.state_machine import render_definition

# The Chalice function the API's stopBatch reaches through its IngestDelete-<stage> copy.
INGEST_DELETE = "ingest_delete"
# What the copy takes over from the function Chalice deployed (besides the code).
COPIED_CONFIGURATION = ("Handler", "Runtime", "Role", "Timeout", "MemorySize")


class DeployError(Exception):
    """A prerequisite is missing or a step failed; the message says which."""


def role_name(stage: Stage) -> str:
    return f"{APP_NAME}-{stage.settings.stage}-states"


def bucket_parameters(stage: Stage) -> dict[str, str]:
    s, name = stage.settings, stage.settings.stage
    return {f"/images/serving-bucket-{name}": s.serving_bucket,
            f"/images/dead-letter-bucket-{name}": s.dead_letter_bucket,
            f"/images/parkinglot-bucket-{name}": s.parking_lot_bucket,
            f"/images/ingestion-bucket-{name}": s.ingestion_bucket}


def deploy(stage: Stage, run_chalice: bool = True, tuning: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """Create or update everything of the stage; `tuning` overrides the ASL's timing values."""
    check_api_prerequisites(stage)
    created_buckets = ensure_buckets(stage)
    ensure_parameters(stage)
    if run_chalice:
        chalice(stage, "deploy")
    arns = deployed_function_arns(stage)
    ingest_delete = ensure_ingest_delete_function(stage, arns[INGEST_DELETE])
    role_arn = ensure_state_machine_role(stage, arns)
    machine_arn = ensure_state_machine(stage, arns, role_arn, tuning)
    return {"stage": stage.settings.stage, "bucketsCreated": created_buckets,
            "functions": sorted(arns), "ingestDelete": ingest_delete,
            "stateMachineArn": machine_arn}


def teardown(stage: Stage, run_chalice: bool = True) -> None:
    """Remove a stage: state machine, its role, the IngestDelete copy, the Chalice app, buckets
    and our parameters."""
    sfn = stage.client("stepfunctions")
    machine = _state_machine_arn(stage)
    if machine:
        sfn.delete_state_machine(stateMachineArn=machine)
    _delete_role(stage)
    # Before Chalice's delete: the copy runs under the role Chalice made for ingest_delete.
    _delete_ingest_delete_function(stage)
    if run_chalice:
        chalice(stage, "delete")
    for bucket in stage.settings.buckets:
        _delete_bucket(stage, bucket)
    ssm = stage.client("ssm")
    for name in bucket_parameters(stage):
        try:
            ssm.delete_parameter(Name=name)
        except ssm.exceptions.ParameterNotFound:
            pass


def check_api_prerequisites(stage: Stage) -> None:
    ssm, secrets = stage.client("ssm"), stage.client("secretsmanager")
    missing = []
    try:
        ssm.get_parameter(Name=stage.settings.api_url_parameter)
    except ssm.exceptions.ParameterNotFound:
        missing.append(f"SSM parameter {stage.settings.api_url_parameter}")
    try:
        secret = secrets.get_secret_value(SecretId=stage.settings.api_key_secret)
        if "apikey" not in json.loads(secret.get("SecretString") or "{}"):
            missing.append(f"field 'apikey' in secret {stage.settings.api_key_secret}")
    except secrets.exceptions.ResourceNotFoundException:
        missing.append(f"secret {stage.settings.api_key_secret}")
    if missing:
        raise DeployError("the Animl API's settings are missing (deploy animl-api first): "
                          + ", ".join(missing))


def ensure_buckets(stage: Stage) -> list[str]:
    s3 = stage.client("s3")
    created = []
    for bucket in stage.settings.buckets:
        try:
            s3.head_bucket(Bucket=bucket)
            continue
        except s3.exceptions.ClientError:
            pass
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if stage.settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": stage.settings.region}
        s3.create_bucket(**kwargs)
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        created.append(bucket)
    return created


def ensure_parameters(stage: Stage) -> None:
    ssm = stage.client("ssm")
    for name, value in bucket_parameters(stage).items():
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def chalice(stage: Stage, command: str) -> None:
    """`chalice deploy|delete --stage S` in the project, with this process's AWS settings."""
    env = {**os.environ, "AWS_DEFAULT_REGION": stage.settings.region}
    executable = Path(sys.executable).with_name("chalice")
    done = subprocess.run([str(executable), command, "--stage", stage.settings.stage],
                          cwd=stage.project_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DeployError(f"chalice {command} failed: {' | '.join(tail)}")


def deployed_function_arns(stage: Stage) -> dict[str, str]:
    path = stage.project_dir / ".chalice" / "deployed" / f"{stage.settings.stage}.json"
    if not path.exists():
        raise DeployError(f"no Chalice deployment recorded for stage {stage.settings.stage}")
    resources = json.loads(path.read_text())["resources"]
    return {r["name"]: r["lambda_arn"] for r in resources
            if r["resource_type"] == "lambda_function"}


def ensure_ingest_delete_function(stage: Stage, source_arn: str) -> str:
    """Create or update `IngestDelete-<stage>` as a copy of what Chalice deployed at `source_arn`.

    The API's stopBatch invokes exactly `IngestDelete-<stage>` (its role may invoke only that
    name), while Chalice names its functions `animl-ingest-<stage>-<function>` and cannot name
    one otherwise. So each deploy gives that name the same code package, handler, runtime, role,
    environment, timeout and memory as Chalice's `ingest_delete`. Returns the copy's name.
    """
    lam = stage.client("lambda")
    source = lam.get_function_configuration(FunctionName=source_arn)
    code = deployed_package(stage, source["CodeSha256"]).read_bytes()
    name = stage.settings.ingest_delete_function_name
    configuration = copied_configuration(source)
    if _function_exists(lam, name):
        _update_function(lam, name, code, configuration, source.get("Architectures"))
    else:
        lam.create_function(FunctionName=name, Code={"ZipFile": code}, **configuration,
                            **_architectures(source.get("Architectures")))
        # Ready when deploy returns: a stopBatch right after must not meet a pending function.
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return name


def deployed_package(stage: Stage, code_sha256: str) -> Path:
    """The zip in `.chalice/deployments/` whose SHA-256 is the deployed function's.

    Chalice names packages by a hash of requirements and sources and reuses an existing one, so
    the newest file is not always the one deployed (a revert reuses an older zip): the
    function's own CodeSha256 says which it is. Newest first, as that is usually the one.
    """
    folder = stage.project_dir / ".chalice" / "deployments"
    candidates = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if _lambda_code_sha256(path) == code_sha256:
            return path
    raise DeployError(f"no package in {folder} matches the code Chalice deployed as "
                      f"{INGEST_DELETE} (CodeSha256 {code_sha256})")


def copied_configuration(source: dict[str, Any]) -> dict[str, Any]:
    """The settings of `source` (a get_function_configuration answer) a copy must share."""
    variables = source.get("Environment", {}).get("Variables", {})
    return {**{key: source[key] for key in COPIED_CONFIGURATION},
            "Environment": {"Variables": variables}}


def _lambda_code_sha256(path: Path) -> str:
    # Lambda's CodeSha256: base64 of the zip's SHA-256 digest.
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _architectures(architectures: list[str] | None) -> dict[str, Any]:
    # The package's compiled wheels (Pillow) are built for the source function's architecture.
    return {"Architectures": architectures} if architectures else {}


def _function_exists(lam: Any, name: str) -> bool:
    try:
        lam.get_function_configuration(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def _update_function(lam: Any, name: str, code: bytes, configuration: dict[str, Any],
                     architectures: list[str] | None) -> None:
    # Lambda refuses a change while the previous one is in progress, hence a wait after each.
    updated = lam.get_waiter("function_updated_v2")
    lam.update_function_code(FunctionName=name, ZipFile=code, **_architectures(architectures))
    updated.wait(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, **configuration)
    updated.wait(FunctionName=name)


def _delete_ingest_delete_function(stage: Stage) -> None:
    lam = stage.client("lambda")
    try:
        lam.delete_function(FunctionName=stage.settings.ingest_delete_function_name)
    except lam.exceptions.ResourceNotFoundException:
        pass


def state_machine_policy(stage: Stage, function_arns: dict[str, str]) -> dict[str, Any]:
    """What IngestBatch itself may do: call its Lambdas, read manifests, delete the archive,
    and run its Distributed Map's child executions."""
    s = stage.settings
    machine = s.state_machine_arn(stage.account)
    execution = machine.replace(":stateMachine:", ":execution:")
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": sorted(function_arns.values())},
        {"Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{s.batch_work_bucket}/batches/*"},
        {"Effect": "Allow", "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{s.ingestion_bucket}/*"},
        {"Effect": "Allow", "Action": ["states:StartExecution"], "Resource": machine},
        {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": f"{execution}:*"},
    ]}


def ensure_state_machine_role(stage: Stage, function_arns: dict[str, str]) -> str:
    iam = stage.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": "states.amazonaws.com"}}]}
    try:
        arn = iam.get_role(RoleName=role_name(stage))["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=role_name(stage), PolicyDocument=json.dumps(trust))
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=role_name(stage),
                              AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name(stage), PolicyName="ingest-batch",
                        PolicyDocument=json.dumps(state_machine_policy(stage, function_arns)))
    return arn


def ensure_state_machine(stage: Stage, function_arns: dict[str, str], role_arn: str,
                         tuning: dict[str, Any] | None = None) -> str:
    sfn = stage.client("stepfunctions")
    definition = render_definition(function_arns, tuning)
    existing = _state_machine_arn(stage)
    if existing:
        sfn.update_state_machine(stateMachineArn=existing, definition=definition,
                                 roleArn=role_arn)
        return existing
    return sfn.create_state_machine(name=stage.settings.state_machine_name,
                                    definition=definition, roleArn=role_arn,
                                    type="STANDARD")["stateMachineArn"]


def _state_machine_arn(stage: Stage) -> str | None:
    paginator = stage.client("stepfunctions").get_paginator("list_state_machines")
    for page in paginator.paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == stage.settings.state_machine_name:
                return machine["stateMachineArn"]
    return None


def _delete_role(stage: Stage) -> None:
    iam = stage.client("iam")
    try:
        for name in iam.list_role_policies(RoleName=role_name(stage))["PolicyNames"]:
            iam.delete_role_policy(RoleName=role_name(stage), PolicyName=name)
        iam.delete_role(RoleName=role_name(stage))
    except iam.exceptions.NoSuchEntityException:
        pass


def _delete_bucket(stage: Stage, bucket: str) -> None:
    s3 = stage.client("s3")
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        pass
