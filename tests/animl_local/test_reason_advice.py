"""Every reason a file can be set aside for has advice, in one place."""

from __future__ import annotations

from animl_local.reason_advice import ADVICE, API_REFUSED_ADVICE, advice_for
from functions.platform import reasons


def reason_codes() -> set[str]:
    """The codes `reasons` defines (upper-case string constants), and the API's validation
    messages; UNKNOWN_ID is a key segment for thrown errors, never a reason of its own."""
    codes = {value for name, value in vars(reasons).items()
             if name.isupper() and isinstance(value, str)}
    return (codes - {reasons.UNKNOWN_ID}) | set(reasons.VALIDATION_ERRORS)


def test_every_reason_code_has_advice_of_its_own() -> None:
    missing = reason_codes() - set(ADVICE)
    assert not missing, f"reasons without advice: {sorted(missing)}"
    assert len(set(ADVICE.values())) == len(ADVICE)  # no advice copied for another reason


def test_advice_is_keyed_by_codes_that_exist() -> None:
    assert set(ADVICE) <= reason_codes()


def test_a_message_the_api_threw_gets_the_general_advice() -> None:
    assert advice_for("Cannot read properties of null (reading 'projectId')") == \
        API_REFUSED_ADVICE
    assert "--serial" in advice_for("Unknown Serial Number")
