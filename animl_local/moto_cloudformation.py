"""What moto's CloudFormation lacks for the stage template, backed by moto's own S3 and CloudFront.

moto 5.2 creates an `AWS::S3::Bucket` with its encryption only (no public access block, CORS,
lifecycle or ownership controls), skips `AWS::S3::BucketPolicy` and every CloudFront type, then
refuses any `Fn::GetAtt` of a skipped resource, and creates an `AWS::StepFunctions::StateMachine`
in its plain backend, which the executing engine (the parser backend) never sees. So a stack of
infrastructure/stage.yaml cannot be created on a moto server as it is. `install()` adds those
types: each turns the template's properties into the request shape moto's backend takes, so the
stack's resources are the ones the S3, CloudFront and Step Functions APIs then answer for (which
is what the deploy test reads back, through the API). Local only: real stages run on CloudFormation.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation import parsing
from moto.cloudfront.models import cloudfront_backends
from moto.core.common_models import CloudFormationModel
from moto.s3.models import FakeBucket, s3_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend


def install() -> None:
    """Make moto's CloudFormation (in this process) use the types below, and drop list items
    that resolve to AWS::NoValue."""
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    if parsing.clean_json is not _clean_json:
        global _moto_clean_json
        _moto_clean_json = parsing.clean_json
        parsing.clean_json = _clean_json  # its own recursive calls find this one too


_moto_clean_json: Any = parsing.clean_json


def _clean_json(resource_json: Any, resources_map: Any) -> Any:
    """moto's clean_json, but as CloudFormation does, `AWS::NoValue` removes a list item (the
    statement an `Fn::If` leaves out) instead of leaving a null in its place."""
    if isinstance(resource_json, list):
        return [_clean_json(item, resources_map) for item in resource_json
                if not _is_no_value(item, resources_map)]
    return _moto_clean_json(resource_json, resources_map)


def _is_no_value(item: Any, resources_map: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if item == {"Ref": "AWS::NoValue"}:
        return True
    if list(item) == ["Fn::If"]:
        condition, if_true, if_false = item["Fn::If"]
        chosen = if_true if resources_map.lazy_condition_map[condition] else if_false
        return _is_no_value(chosen, resources_map)
    return False


def _s3(account_id: str) -> Any:
    return s3_backends[account_id]["aws"]


def _cloudfront(account_id: str) -> Any:
    return cloudfront_backends[account_id]["global"]


def _bucket_settings(bucket: str, properties: dict[str, Any], account_id: str) -> None:
    """The bucket properties moto's own Bucket type ignores, applied through the S3 backend."""
    backend = _s3(account_id)
    if "PublicAccessBlockConfiguration" in properties:
        backend.put_public_access_block(bucket, properties["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in properties:
        rule = properties["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
        backend.put_bucket_ownership_controls(bucket, rule)
    if "CorsConfiguration" in properties:
        backend.put_bucket_cors(bucket, [_cors_rule(rule) for rule in
                                         properties["CorsConfiguration"]["CorsRules"]])
    if "LifecycleConfiguration" in properties:
        backend.put_bucket_lifecycle_configuration(
            bucket, [_lifecycle_rule(rule) for rule in
                     properties["LifecycleConfiguration"]["Rules"]])


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation's plural names -> the S3 API's singular ones.
    converted: dict[str, Any] = {"AllowedMethod": rule["AllowedMethods"],
                                 "AllowedOrigin": rule["AllowedOrigins"]}
    if "AllowedHeaders" in rule:
        converted["AllowedHeader"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        converted["ExposeHeader"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        converted["MaxAgeSeconds"] = str(rule["MaxAge"])
    return converted


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"],
                                 "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    return converted


class BucketWithSettings(CloudFormationModel):
    """`AWS::S3::Bucket`: moto's bucket, then the settings it skips."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "BucketName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::Bucket"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> Any:
        bucket = FakeBucket.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _bucket_settings(bucket.name, cloudformation_json.get("Properties", {}), account_id)
        return bucket

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any,
            account_id: str, region_name: str) -> Any:
        bucket = FakeBucket.update_from_cloudformation_json(
            original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        _bucket_settings(bucket.name, cloudformation_json.get("Properties", {}), account_id)
        return bucket

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        FakeBucket.delete_from_cloudformation_json(resource_name, cloudformation_json,
                                                   account_id, region_name)


class BucketPolicy(CloudFormationModel):
    """`AWS::S3::BucketPolicy` -> PutBucketPolicy."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> BucketPolicy:
        properties = cloudformation_json["Properties"]
        _s3(account_id).put_bucket_policy(
            properties["Bucket"], json.dumps(properties["PolicyDocument"]).encode())
        return cls(properties["Bucket"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any,
            account_id: str, region_name: str) -> BucketPolicy:
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        if resource_name in _s3(account_id).buckets:  # its physical id: the bucket's name
            _s3(account_id).delete_bucket_policy(resource_name)


class _ReplacedOnChange:
    """A CloudFront object that any property change replaces (as on CloudFront); `made` is
    moto's object, whose id is the physical id and the `Ref`."""

    def __init__(self, made: Any) -> None:
        self.made = made

    @property
    def physical_resource_id(self) -> str:
        return str(self.made.id)

    @classmethod
    def update_from_cloudformation_json(cls: Any, original_resource: Any,
                                        new_resource_name: str, cloudformation_json: Any,
                                        account_id: str, region_name: str) -> Any:
        cls.delete_from_cloudformation_json(original_resource.physical_resource_id,
                                            cloudformation_json, account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)


class OriginAccessControl(_ReplacedOnChange, CloudFormationModel):
    """`AWS::CloudFront::OriginAccessControl` -> CreateOriginAccessControl."""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.made.id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::OriginAccessControl"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> OriginAccessControl:
        config = cloudformation_json["Properties"]["OriginAccessControlConfig"]
        return cls(_cloudfront(account_id).create_origin_access_control(dict(config)))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        _cloudfront(account_id).origin_access_controls.pop(resource_name, None)


class PublicKey(_ReplacedOnChange, CloudFormationModel):
    """`AWS::CloudFront::PublicKey` -> CreatePublicKey; `Ref` is the key's id."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::PublicKey"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> PublicKey:
        config = cloudformation_json["Properties"]["PublicKeyConfig"]
        return cls(_cloudfront(account_id).create_public_key(
            caller_ref=config["CallerReference"], name=config["Name"],
            encoded_key=config["EncodedKey"]))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        _cloudfront(account_id).delete_public_key(resource_name)


class KeyGroup(_ReplacedOnChange, CloudFormationModel):
    """`AWS::CloudFront::KeyGroup` -> CreateKeyGroup; `Ref` is the group's id."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::KeyGroup"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> KeyGroup:
        config = cloudformation_json["Properties"]["KeyGroupConfig"]
        return cls(_cloudfront(account_id).create_key_group(name=config["Name"],
                                                            items=list(config["Items"])))

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        # moto's backend has no DeleteKeyGroup.
        _cloudfront(account_id).key_groups.pop(resource_name, None)


def _distribution_request(config: dict[str, Any], caller_reference: str) -> dict[str, Any]:
    """CloudFormation's DistributionConfig -> the CreateDistribution shape moto parses
    (lists become `{"Quantity", "Items"}`)."""
    behavior = dict(config["DefaultCacheBehavior"])
    behavior["TrustedKeyGroups"] = {"Enabled": bool(behavior.get("TrustedKeyGroups")),
                                    "Items": list(behavior.get("TrustedKeyGroups", []))}
    behavior["AllowedMethods"] = {
        "Items": list(behavior.get("AllowedMethods", ["GET", "HEAD"])),
        "CachedMethods": {"Items": list(behavior.pop("CachedMethods", ["GET", "HEAD"]))}}
    origins = [dict(origin) for origin in config["Origins"]]
    return {**{key: value for key, value in config.items()
               if key not in ("Origins", "DefaultCacheBehavior")},
            "CallerReference": caller_reference,
            "Origins": {"Quantity": len(origins), "Items": origins},
            "DefaultCacheBehavior": behavior}


class Distribution(CloudFormationModel):
    """`AWS::CloudFront::Distribution` -> CreateDistribution; `Ref` is its id."""

    def __init__(self, distribution: Any) -> None:
        self.distribution = distribution

    @property
    def physical_resource_id(self) -> str:
        return str(self.distribution.distribution_id)

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("DomainName", "Id")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "DomainName":
            return self.distribution.domain_name
        return self.distribution.distribution_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFront::Distribution"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> Distribution:
        config = cloudformation_json["Properties"]["DistributionConfig"]
        distribution, _, _ = _cloudfront(account_id).create_distribution(
            _distribution_request(config, caller_reference=resource_name), tags=[])
        return cls(distribution)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any,
            account_id: str, region_name: str) -> Distribution:
        config = cloudformation_json["Properties"]["DistributionConfig"]
        distribution_id = original_resource.distribution.distribution_id
        distribution, _, _ = _cloudfront(account_id).update_distribution(
            _distribution_request(config, caller_reference=new_resource_name),
            distribution_id, if_match=True)
        return cls(distribution)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        _cloudfront(account_id).delete_distribution(resource_name, if_match=True)


class StateMachine(CloudFormationModel):
    """`AWS::StepFunctions::StateMachine` in the backend the Step Functions API answers from."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "StateMachineName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::StepFunctions::StateMachine"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        return stepfunctions_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name), properties["DefinitionString"],
            properties["RoleArn"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
            cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any,
            account_id: str, region_name: str) -> Any:
        properties = cloudformation_json["Properties"]
        return stepfunctions_backend(account_id, region_name).update_state_machine(
            original_resource.arn, definition=properties["DefinitionString"],
            role_arn=properties["RoleArn"])

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str) -> None:
        stepfunctions_backend(account_id, region_name).delete_state_machine(resource_name)
