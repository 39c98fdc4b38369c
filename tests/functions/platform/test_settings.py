"""Settings: each field declared once, its environment variable derived from its name."""

from __future__ import annotations

from dataclasses import fields, replace

from functions.platform.settings import Settings


def test_every_field_survives_the_environment_round_trip() -> None:
    changed = Settings(stage="qa", region="eu-west-1")
    for item in fields(Settings):
        value = getattr(changed, item.name)
        if isinstance(value, bool):
            changed = replace(changed, **{item.name: not value})
        elif isinstance(value, int | float) and item.name not in ("stage", "region"):
            changed = replace(changed, **{item.name: value + 1})
    environment = changed.to_environment()
    assert len(environment) == len(fields(Settings))
    assert Settings.from_environment(environment) == changed


def test_names_follow_the_fields_and_lambda_sets_the_region() -> None:
    environment = Settings(stage="qa").to_environment()
    assert environment["MAX_IMAGE_BYTES"] == str(100 * 1024 * 1024)
    assert environment["AWS_REGION"] == "us-west-2" and "REGION" not in environment
    assert Settings.from_environment({"AWS_DEFAULT_REGION": "us-east-1"}).region == "us-east-1"
    assert Settings.from_environment({}) == Settings(stage="dev")
