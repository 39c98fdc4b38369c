"""The key pair behind the serving distribution's signed URLs.

The Animl API signs image URLs with the private key it reads from
`/images/cloudfront-distribution-privatekey-<stage>` (a SecureString); CloudFront checks them with
the public half, which the stack declares. The pair is generated once, on the first deploy, and
kept: every later deploy derives the same public key from the stored private key, so a re-deploy
changes nothing. The private key is only ever written to SSM, never returned, printed or logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# CloudFront accepts RSA 2048 public keys for signed URLs.
KEY_BITS = 2048


@dataclass(frozen=True)
class SigningPublicKey:
    pem: str
    fingerprint: str  # 16 hex digits of its SHA-256, to name the key in CloudFront


def private_key_parameter(stage: str) -> str:
    return f"/images/cloudfront-distribution-privatekey-{stage}"


def ensure_signing_key(ssm: Any, stage: str) -> SigningPublicKey:
    """The stage's public key, generating and storing the pair first if there is none."""
    name = private_key_parameter(stage)
    try:
        with _wire_log_off():
            stored = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        private_key = serialization.load_pem_private_key(stored.encode(), password=None)
    except ssm.exceptions.ParameterNotFound:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()).decode()
        try:
            # Overwrite=False: of two deploys racing, the first key stays and both use it.
            with _wire_log_off():
                ssm.put_parameter(Name=name, Value=pem, Type="SecureString", Overwrite=False,
                                  Description="Signs the serving distribution's image URLs")
        except ssm.exceptions.ParameterAlreadyExists:
            return ensure_signing_key(ssm, stage)
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return SigningPublicKey(pem=public,
                            fingerprint=hashlib.sha256(public.encode()).hexdigest()[:16])


def delete_signing_key(ssm: Any, stage: str) -> None:
    try:
        ssm.delete_parameter(Name=private_key_parameter(stage))
    except ssm.exceptions.ParameterNotFound:
        pass


@contextmanager
def _wire_log_off() -> Iterator[None]:
    """botocore logs request and response bodies at DEBUG (`--debug`): not for these calls."""
    logger = logging.getLogger("botocore")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)
