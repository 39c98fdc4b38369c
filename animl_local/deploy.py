"""`animl-ingest deploy --stage S`: the whole stage from one command, and its teardown.

Three parts, in this order:
1. the stack `animl-ingest-S` (infrastructure/stage.yaml): buckets, their policies and CORS, the
   serving CloudFront distribution and its signing key, the SSM parameters the Animl API reads,
   and the IngestBatch state machine with its role. The state machine's function ARNs are the
   names Chalice gives, so the stack goes first and the S3 notification finds its bucket;
2. `chalice deploy --stage S`: the Lambdas, the S3 notification, the EventBridge rules (each
   rule belongs with the function it invokes and the permission Chalice grants for it);
3. `IngestDelete-S`, a copy of Chalice's `ingest_delete` under the one name the API's stopBatch
   may invoke.
Running it again updates in place, and says when nothing changed. The API URL and key belong to
the API: they are read and checked, never created.
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

from botocore.exceptions import ClientError

from animl_local import signing_key, stack
from animl_local.aws_stage import Stage

# The Chalice function the API's stopBatch reaches through its IngestDelete-<stage> copy.
INGEST_DELETE = "ingest_delete"
# What the copy takes over from the function Chalice deployed (besides the code).
COPIED_CONFIGURATION = ("Handler", "Runtime", "Role", "Timeout", "MemorySize")
# A stage bucket keeps all four of S3's Block Public Access settings on.
BLOCK_PUBLIC_ACCESS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                       "RestrictPublicBuckets")
# ACL grantees that open a bucket to everyone (S3's predefined groups).
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
# What S3 answers a HeadBucket for a missing bucket, and for one of another owner.
_MISSING = ("404", "NoSuchBucket", "NotFound")
_NOT_OURS = ("403", "AccessDenied")


class DeployError(Exception):
    """A prerequisite is missing or a step failed; the message says which."""


def deploy(stage: Stage, run_chalice: bool = True, tuning: dict[str, Any] | None = None,
           overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Create or update everything of the stage; `tuning` overrides the ASL's timing values,
    `overrides` the stage's stack parameters (stack.MOTO_PARAMETERS for a moto server)."""
    settings = stage.settings
    check_api_prerequisites(stage)
    entry = _stage_entry(settings.stage)
    account = stage.account
    refuse_exposed_buckets(stage, account)
    stack_change, machine_functions = apply_stage_stack(
        stage, account, configured_functions(stage), {**entry["parameters"], **(overrides or {})},
        tuning)
    name = stack.stack_name(settings)
    if run_chalice:
        chalice(stage, "deploy")
    arns = deployed_function_arns(stage)
    _check_names_as_expected(machine_functions, arns)
    ingest_delete = ensure_ingest_delete_function(stage, arns[INGEST_DELETE])
    return {"stage": settings.stage, "stack": stack_change, "stackName": name,
            "functions": sorted(arns), "ingestDelete": ingest_delete,
            "stateMachineArn": _state_machine_made(stage, account)}


def apply_stage_stack(stage: Stage, account: str, chalice_functions: list[str],
                      stage_parameters: dict[str, str], tuning: dict[str, Any] | None = None
                      ) -> tuple[str, dict[str, str]]:
    """Part 1 of a deploy, and all of the stage that the embedded engine does not make itself:
    the stack, its signing key first. Returns the stack's change ("created", "updated",
    "unchanged") and the ARNs of the functions the state machine invokes, by Chalice name."""
    settings = stage.settings
    cfn, name = stage.client("cloudformation"), stack.stack_name(settings)
    if stack.stack_status(cfn, name) in (None, "ROLLBACK_COMPLETE"):
        refuse_buckets_outside_the_stack(stage)
    machine_functions = {function: stack.function_arn(settings, account, function)
                         for function in stack.state_machine_functions(chalice_functions)}
    public_key = signing_key.ensure_signing_key(stage.client("ssm"), settings.stage)
    parameters = {"Stage": settings.stage, **stage_parameters,
                  "SigningPublicKey": public_key.pem,
                  "SigningKeyFingerprint": public_key.fingerprint,
                  "IngestBatchFunctionArns": ",".join(sorted(machine_functions.values()))}
    try:
        body = stack.render_template(settings, machine_functions, tuning)
        return stack.apply(cfn, name, body, parameters), machine_functions
    except stack.StackError as exc:
        raise DeployError(str(exc)) from None


def teardown(stage: Stage, run_chalice: bool = True) -> dict[str, Any]:
    """Remove a stage: the IngestDelete copy, the Chalice app, the stack, the signing key and,
    unless the stage keeps its data (prod), the data buckets the stack retains."""
    settings = stage.settings
    keep_data = keeps_data_on_teardown(settings.stage)
    # Before Chalice's delete: the copy runs under the role Chalice made for ingest_delete.
    _delete_ingest_delete_function(stage)
    if run_chalice:
        chalice(stage, "delete")
    # CloudFormation deletes only an empty bucket.
    _empty_bucket(stage, settings.batch_work_bucket)
    try:
        stack.delete(stage.client("cloudformation"), stack.stack_name(settings))
    except stack.StackError as exc:
        raise DeployError(str(exc)) from None
    signing_key.delete_signing_key(stage.client("ssm"), settings.stage)
    kept = [b for b in settings.buckets if b != settings.batch_work_bucket]
    if not keep_data:
        for bucket in kept:
            _empty_bucket(stage, bucket)
            _delete_bucket(stage, bucket)
        kept = []
    return {"stage": settings.stage, "bucketsKept": kept}


def _stage_entry(stage_name: str) -> dict[str, Any]:
    try:
        return stack.stage_settings(stage_name)
    except stack.StackError as exc:
        raise DeployError(str(exc)) from None


def keeps_data_on_teardown(stage_name: str) -> bool:
    return bool(_stage_entry(stage_name).get("keepDataOnTeardown"))


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


def refuse_exposed_buckets(stage: Stage, account: str) -> None:
    """Before anything changes: each stage bucket that exists is the account's, and private.

    Bucket names are predictable, so a bucket of the stage's name may belong to someone else, or
    be one of ours opened up by hand; deploying would pour images into it.
    """
    s3 = stage.client("s3")
    problems = [f"{bucket} {why}" for bucket in stage.settings.buckets
                if (why := bucket_exposure(s3, bucket, account))]
    if problems:
        raise DeployError("refusing to deploy: " + "; ".join(problems) + " (a stage bucket must "
                          "belong to this account and keep all public access blocked)")


def bucket_exposure(s3: Any, bucket: str, account: str) -> str | None:
    """Why `bucket` may not hold the stage's data; None when it is missing, or ours and private.

    `s3` adds ExpectedBucketOwner (functions.platform.bucket_owner): S3 answers 403 for a bucket
    of another account, whatever its policy grants us.
    """
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in _MISSING:
            return None
        if code in _NOT_OURS:
            return (f"exists but is not owned by account {account} (or these credentials may "
                    "not reach it)")
        raise
    reasons = [why for why in (_public_access_not_blocked(s3, bucket), _public_policy(s3, bucket),
                               _public_acl(s3, bucket)) if why]
    return "is public: " + ", ".join(reasons) if reasons else None


def _public_access_not_blocked(s3: Any, bucket: str) -> str | None:
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = {}
    off = [flag for flag in BLOCK_PUBLIC_ACCESS if not block.get(flag)]
    return f"Block Public Access off ({', '.join(off)})" if off else None


def _public_policy(s3: Any, bucket: str) -> str | None:
    """A policy statement that allows everyone (Principal "*"), conditions or not: stricter than
    S3's own rule, which lets some fixed-value conditions make such a statement non-public."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        return None
    for statement in _as_list(policy.get("Statement", [])):
        principal = statement.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict)
                                        and "*" in _as_list(principal.get("AWS")))
        if statement.get("Effect") == "Allow" and everyone:
            return "its bucket policy allows everyone (Principal *)"
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _public_acl(s3: Any, bucket: str) -> str | None:
    grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
    groups = sorted({g["Grantee"].get("URI", "") for g in grants} & set(PUBLIC_GRANTEES))
    return f"its ACL grants {', '.join(g.rsplit('/', 1)[-1] for g in groups)}" if groups else None


def refuse_buckets_outside_the_stack(stage: Stage) -> None:
    """Before a stack is created: a stage bucket that already exists would fail it halfway."""
    s3 = stage.client("s3")
    existing = []
    for bucket in stage.settings.buckets:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                continue
            raise
        existing.append(bucket)
    if existing:
        raise DeployError(
            f"bucket(s) {', '.join(existing)} already exist outside the stack "
            f"{stack.stack_name(stage.settings)} (an earlier deploy, or a kept prod bucket): "
            "import them into the stack (a change set of type IMPORT) or empty and delete them")


def configured_functions(stage: Stage) -> list[str]:
    """The Lambda functions the stage's .chalice/config.json configures."""
    config = json.loads((stage.project_dir / ".chalice" / "config.json").read_text())
    return sorted(config["stages"][stage.settings.stage]["lambda_functions"])


def _state_machine_made(stage: Stage, account: str) -> str:
    """IngestBatch's ARN, once the stack has made it."""
    arn = stage.settings.state_machine_arn(account)
    sfn = stage.client("stepfunctions")
    return str(sfn.describe_state_machine(stateMachineArn=arn)["stateMachineArn"])


def _check_names_as_expected(expected: dict[str, str], deployed: dict[str, str]) -> None:
    wrong = {f: arn for f, arn in expected.items() if deployed.get(f) != arn}
    if wrong:
        raise DeployError("Chalice deployed the state machine's functions under other ARNs "
                          f"than the stack expects: {', '.join(sorted(wrong))}")


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


def _empty_bucket(stage: Stage, bucket: str) -> None:
    s3 = stage.client("s3")
    try:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
            if versions:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": [
                    {"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]})
    except s3.exceptions.NoSuchBucket:
        pass


def _delete_bucket(stage: Stage, bucket: str) -> None:
    s3 = stage.client("s3")
    try:
        s3.delete_bucket(Bucket=bucket)
    except s3.exceptions.NoSuchBucket:
        pass
