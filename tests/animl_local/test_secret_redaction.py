"""Secrets are masked in every log line, whatever shape botocore logs them in."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from animl_local.secret_redaction import RedactingFormatter, keep_secret, redact

KEY = "Sup3r-s_cret.K3y"


@pytest.mark.parametrize("line", [
    # GetSecretValue's answer as botocore's wire log prints it (a bytes repr of the JSON).
    "Response body:\n" + repr(json.dumps(
        {"Name": "api-key-dev", "SecretString": json.dumps({"apikey": KEY})}).encode()),
    # CreateSecret's request parameters.
    repr({"body": json.dumps({"Name": "api-key-local",
                              "SecretString": json.dumps({"apikey": KEY})}).encode()}),
    repr({"headers": {"x-api-key": KEY}}),
    json.dumps({"SecretString": KEY}),
    f"api_key={KEY}",
])
def test_an_api_key_is_masked_in_every_shape(line: str) -> None:
    assert KEY in line
    masked = redact(line)
    assert KEY not in masked and "***" in masked
    assert "api-key-" not in line or "api-key-" in masked  # a secret's name is not a secret


def test_a_private_key_is_masked_escaped_or_not() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----"
    for line in (f"Value: {pem}", repr({"Value": pem})):
        assert "MIIEvQIBADANBgkqhkiG9w0B" not in redact(line)


def test_a_known_secret_is_masked_anywhere_and_in_tracebacks() -> None:
    keep_secret("k-3829-known")
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("auth failed with k-3829-known")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "using %s", ("k-3829-known",),
                                   exc_info=sys.exc_info())
    assert "k-3829-known" not in formatter.format(record)
