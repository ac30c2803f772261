"""Secrets Manager, through Powertools parameters (cached across invocations with a max age)."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from calendly_sync.adapters.aws_clients import AWS_CLIENT_CONFIG
from calendly_sync.errors import ConfigurationError, SecretUnavailable
from calendly_sync.settings import get_settings

# A forged delivery fails verification too; re-reading the keys on every failure would let a
# flood of them turn into a flood of Secrets Manager calls.
_FORCED_REFRESH_INTERVAL_SECONDS = 60.0
_last_forced_refresh = float("-inf")


@cache
def _provider() -> SecretsProvider:
    return SecretsProvider(boto_config=AWS_CLIENT_CONFIG)


def signing_keys() -> tuple[str, ...]:
    """The webhook signing keys to accept: ``current``, then ``previous`` during a rotation."""
    return _read_signing_keys(force_fetch=False)


def refreshed_signing_keys() -> tuple[str, ...] | None:
    """The keys read afresh (a rotation may have happened), at most once a minute, else None."""
    global _last_forced_refresh
    now = time.monotonic()
    if now - _last_forced_refresh < _FORCED_REFRESH_INTERVAL_SECONDS:
        return None
    _last_forced_refresh = now
    return _read_signing_keys(force_fetch=True)


def _read_signing_keys(*, force_fetch: bool) -> tuple[str, ...]:
    settings = get_settings()
    if not settings.signing_key_secret_id:
        raise ConfigurationError("SIGNING_KEY_SECRET_ARN is not set")
    value = _get_json_secret(
        settings.signing_key_secret_id, max_age=settings.secret_max_age_seconds, force_fetch=force_fetch
    )
    current = value.get("current")
    previous = value.get("previous")
    if not isinstance(current, str) or not current:
        raise ConfigurationError("the signing key secret has no 'current' key")
    if previous is not None and not isinstance(previous, str):
        raise ConfigurationError("the signing key secret's 'previous' key is not a string")
    return (current, previous) if previous else (current,)


def _get_json_secret(secret_id: str, *, max_age: int, force_fetch: bool) -> dict[str, Any]:
    try:
        value = _provider().get(secret_id, max_age=max_age, transform="json", force_fetch=force_fetch)
    except TransformParameterError:
        raise ConfigurationError("a secret does not hold a JSON object") from None
    except GetParameterError as error:
        cause = getattr(error.__cause__, "response", {}).get("Error", {}).get("Code")
        raise SecretUnavailable(
            f"could not read a secret ({cause or type(error.__cause__).__name__})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigurationError("a secret does not hold a JSON object")
    return value


def clear_secret_caches() -> None:
    """Forget cached secret values and the refresh clock (for tests and key rotation drills)."""
    global _last_forced_refresh
    _last_forced_refresh = float("-inf")
    if _provider.cache_info().currsize:
        _provider().clear_cache()
    _provider.cache_clear()
