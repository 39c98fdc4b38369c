"""Secrets never reach the log, `--debug` included.

botocore's wire log (DEBUG) prints request and response bodies: GetSecretValue's answer holds the
API key, CreateSecret's request the key a local stage makes, PutParameter the CloudFront private
key. `RedactingFormatter` masks, in every formatted line (tracebacks included): the values this
process knows are secret (`keep_secret`), the value after an API-key or SecretString field name,
and any PEM private key.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# A field name, then quotes, backslashes (a body logged as a Python bytes repr escapes the JSON),
# a colon or an equals sign, then the value up to its closing quote.
_SECRET_FIELD = re.compile(
    r"(?i)((?:apikey|api[-_]key|x-api-key|SecretString|SecretBinary)[\\\"' ]{0,6}[:=][\\\"' ]{0,6})"
    r"([^\\\"'\s,}]+)")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                          re.DOTALL)

_known: set[str] = set()
_known_lock = threading.Lock()


def keep_secret(value: str) -> None:
    """Mask `value` wherever a log line of this process would show it."""
    if value:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    text = _PRIVATE_KEY.sub(MASK, text)
    return _SECRET_FIELD.sub(lambda m: m.group(1) + MASK, text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def redact_handlers(logger: logging.Logger) -> None:
    """Give each of the logger's handlers the redacting formatter (keeping its format)."""
    for handler in logger.handlers:
        current = handler.formatter
        handler.setFormatter(RedactingFormatter(current._fmt if current else None))
