"""Secrets Manager, through Powertools parameters (cached across invocations with a max age).

Each secret is an object built with its id and cache age (from ``Settings``) by the handler
that wires the function; nothing here reads the settings or the environment.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    SetSecretError,
    TransformParameterError,
)

from calendly_sync.adapters.aws_clients import AWS_CLIENT_CONFIG
from calendly_sync.errors import ConfigurationError, SecretUnavailable

# A forged delivery fails verification too; re-reading the keys on every failure would let a
# flood of them turn into a flood of Secrets Manager calls.
_FORCED_REFRESH_INTERVAL_SECONDS = 60.0
_last_forced_refresh = float("-inf")


@cache
def _provider() -> SecretsProvider:
    return SecretsProvider(boto_config=AWS_CLIENT_CONFIG)


@dataclass(frozen=True, slots=True)
class SigningKeySecret:
    """WebhookSigningKeySecret: ``{"current", "next"?, "previous"?, "rotated_at"?}``.

    ``secret_id`` None (SIGNING_KEY_SECRET_ARN unset) fails on first use, not when wired, so a
    function that never needs the keys still runs.
    """

    secret_id: str | None
    max_age_seconds: int = 300

    def signing_keys(self) -> tuple[str, ...]:
        """The webhook signing keys to accept: ``current``, then ``next`` and ``previous`` if present.

        ``next`` is a rotation's new key, accepted from the moment it is written: Calendly may sign
        with it as soon as the subscription made with it exists, before it becomes ``current``.
        """
        return self._read_signing_keys(force_fetch=False)

    def refreshed_signing_keys(self) -> tuple[str, ...] | None:
        """The keys read afresh (a rotation may have happened), at most once a minute, else None."""
        global _last_forced_refresh
        now = time.monotonic()
        if now - _last_forced_refresh < _FORCED_REFRESH_INTERVAL_SECONDS:
            return None
        _last_forced_refresh = now
        return self._read_signing_keys(force_fetch=True)

    def _read_signing_keys(self, *, force_fetch: bool) -> tuple[str, ...]:
        value = _get_json_secret(self._id(), max_age=self.max_age_seconds, force_fetch=force_fetch)
        current = value.get("current")
        if not isinstance(current, str) or not current:
            raise ConfigurationError("the signing key secret has no 'current' key")
        accepted = [current]
        for member in ("next", "previous"):
            key = value.get(member)
            if key is not None and not isinstance(key, str):
                raise ConfigurationError(f"the signing key secret's {member!r} key is not a string")
            if key:
                accepted.append(key)
        return tuple(accepted)

    def state(self) -> dict[str, Any]:
        """The whole secret, read afresh: ``current``, ``next``, ``previous``, ``rotated_at``."""
        state = _get_json_secret(self._id(), max_age=self.max_age_seconds, force_fetch=True)
        if not isinstance(state.get("current"), str) or not state["current"]:
            raise ConfigurationError("the signing key secret has no 'current' key")
        return state

    def write(self, state: dict[str, Any]) -> None:
        _put_json_secret(self._id(), state)

    def _id(self) -> str:
        if not self.secret_id:
            raise ConfigurationError("SIGNING_KEY_SECRET_ARN is not set")
        return self.secret_id


@dataclass(frozen=True, slots=True)
class TokenSecret:
    """CalendlyTokenSecret: ``{"token", ...what was learnt when it was checked}``."""

    secret_id: str | None
    max_age_seconds: int = 300

    def stored_token(self, *, force_fetch: bool = False) -> dict[str, Any] | None:
        """``{"token", ...metadata}``, or None while no token was saved."""
        try:
            value = _get_json_secret(self._id(), max_age=self.max_age_seconds, force_fetch=force_fetch)
        except SecretUnavailable as error:
            # The template creates the secret empty: no version yet means nobody connected.
            if "ResourceNotFoundException" in str(error):
                return None
            raise
        token = value.get("token")
        return value if isinstance(token, str) and token else None

    def save_token(self, token: str, metadata: dict[str, Any]) -> None:
        """Store a token Calendly accepted, with what was learnt about it (never call this otherwise)."""
        _put_json_secret(self._id(), {**metadata, "token": token})

    def _id(self) -> str:
        if not self.secret_id:
            raise ConfigurationError("TOKEN_SECRET_ARN is not set")
        return self.secret_id


def _put_json_secret(secret_id: str, value: dict[str, Any]) -> None:
    try:
        _provider().set(secret_id, json.dumps(value))
    except SetSecretError as error:
        raise SecretUnavailable(f"could not write a secret ({_aws_error_code(error)})") from None
    # The next read must see the new value, not the cached one.
    _provider().clear_cache()


def _get_json_secret(secret_id: str, *, max_age: int, force_fetch: bool) -> dict[str, Any]:
    try:
        value = _provider().get(secret_id, max_age=max_age, transform="json", force_fetch=force_fetch)
    except TransformParameterError:
        raise ConfigurationError("a secret does not hold a JSON object") from None
    except GetParameterError as error:
        raise SecretUnavailable(f"could not read a secret ({_aws_error_code(error)})") from None
    if not isinstance(value, dict):
        raise ConfigurationError("a secret does not hold a JSON object")
    return value


def _aws_error_code(error: Exception) -> str:
    """The AWS error code behind a Powertools error (its message never holds a secret value)."""
    code = getattr(error.__cause__, "response", {}).get("Error", {}).get("Code")
    if code:
        return str(code)
    found = re.search(r"\(([A-Za-z]+(?:Exception|Error))\)", str(error))
    return found.group(1) if found else type(error).__name__


def clear_secret_caches() -> None:
    """Forget cached secret values and the refresh clock (for tests and key rotation drills)."""
    global _last_forced_refresh
    _last_forced_refresh = float("-inf")
    if _provider.cache_info().currsize:
        _provider().clear_cache()
    _provider.cache_clear()
