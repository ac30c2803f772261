"""Typed settings, parsed once from the environment.

Environment variables carry wiring only (table name, secret ids, URLs, limits); secrets
themselves are read from Secrets Manager by ``adapters.secrets``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from calendly_sync.errors import ConfigurationError

DEFAULT_CALENDLY_API_BASE_URL = "https://api.calendly.com"
# Plain http only where nothing leaves the machine: the local runner's and the tests' sandbox.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A delivery's body is stored whole in one DynamoDB item, and an item holds at most 400 KB,
# attribute names included (under 400,000 bytes either way KB is read). The delivery's other
# attributes (keys, a 128-char event name, timestamps) take under 1 KB. The template's
# WebhookMaxBodyBytes has this as its MaxValue (a test holds the two together).
MAX_STORABLE_WEBHOOK_BODY_BYTES = 384 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    signing_key_secret_id: str | None
    token_secret_id: str | None
    calendly_api_base_url: str = DEFAULT_CALENDLY_API_BASE_URL
    #: The stack's own webhook route, given to Calendly by WebhookSubscriptionFunction.
    webhook_url: str | None = None
    max_webhook_body_bytes: int = 256 * 1024
    # Calendly's own example refuses signatures older than three minutes.
    signature_tolerance_seconds: int = 180
    # Clocks drift; a delivery stamped a little in the future is still genuine.
    signature_future_skew_seconds: int = 30
    secret_max_age_seconds: int = 300
    delivery_retention_days: int = 90
    poll_lookback_days: int = 30
    poll_horizon_days: int = 180
    backfill_chunk_days: int = 30
    #: The bus downstream events go to (PublishChangesFunction); None where nothing publishes.
    event_bus_name: str | None = None
    #: Where the publisher sets aside a change EventBridge will never accept (PublishFailureQueue).
    publish_failure_queue_url: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        table_name = env.get("TABLE_NAME", "").strip()
        if not table_name:
            raise ConfigurationError("TABLE_NAME is not set")
        return cls(
            table_name=table_name,
            signing_key_secret_id=env.get("SIGNING_KEY_SECRET_ARN") or None,
            token_secret_id=env.get("TOKEN_SECRET_ARN") or None,
            calendly_api_base_url=_calendly_base_url(env.get("CALENDLY_API_BASE_URL")),
            webhook_url=env.get("WEBHOOK_URL") or None,
            max_webhook_body_bytes=_storable_body_limit(env),
            signature_tolerance_seconds=_positive_int(env, "SIGNATURE_TOLERANCE_SECONDS", 180),
            signature_future_skew_seconds=_positive_int(env, "SIGNATURE_FUTURE_SKEW_SECONDS", 30),
            secret_max_age_seconds=_positive_int(env, "SECRET_MAX_AGE_SECONDS", 300),
            delivery_retention_days=_positive_int(env, "DELIVERY_RETENTION_DAYS", 90),
            poll_lookback_days=_positive_int(env, "POLL_LOOKBACK_DAYS", 30),
            poll_horizon_days=_positive_int(env, "POLL_HORIZON_DAYS", 180),
            backfill_chunk_days=_positive_int(env, "BACKFILL_CHUNK_DAYS", 30),
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            publish_failure_queue_url=env.get("PUBLISH_FAILURE_QUEUE_URL") or None,
        )


def _calendly_base_url(raw: str | None) -> str:
    """``https://`` only (loopback ``http://`` aside): the token travels in every request's header."""
    value = (raw or "").strip() or DEFAULT_CALENDLY_API_BASE_URL
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 (an out-of-range or non-numeric port raises here)
    except ValueError:
        host = None
    problem = None
    if not host:
        problem = "must be an absolute URL such as https://api.calendly.com"
    elif parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        problem = "must use https:// (plain http:// only on 127.0.0.1, localhost or [::1])"
    elif parts.scheme not in ("https", "http"):
        problem = "must use https://"
    elif parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        problem = "must not carry credentials, a query or a fragment"
    if problem:
        # Naming the URL helps whoever set it, unless it carries credentials.
        shown = "" if "@" in value else f", got {value!r}"
        raise ConfigurationError(f"CALENDLY_API_BASE_URL {problem}{shown}")
    return value.rstrip("/")


def _storable_body_limit(env: Mapping[str, str]) -> int:
    """MAX_WEBHOOK_BODY_BYTES, refused above what one item can hold (a larger body would be a 503 forever)."""
    value = _positive_int(env, "MAX_WEBHOOK_BODY_BYTES", 256 * 1024)
    if value > MAX_STORABLE_WEBHOOK_BODY_BYTES:
        raise ConfigurationError(
            f"MAX_WEBHOOK_BODY_BYTES must be at most {MAX_STORABLE_WEBHOOK_BODY_BYTES} "
            f"(one DynamoDB item holds the body and its attributes), got {value}"
        )
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value}")
    return value


@cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings.from_environment()


def built_per_settings[Built](build: Callable[[Settings], Built]) -> Callable[[], Built]:
    """What a handler builds from the settings (its adapters, its clock), once per container.

    Built on the first call, not at import (no I/O then), and again only when the settings
    are new: tests and local runs that change the environment clear ``get_settings``, as a
    new container would start afresh.
    """
    built: list[tuple[Settings, Built]] = []

    def current() -> Built:
        settings = get_settings()
        if not built or built[0][0] is not settings:
            built[:] = [(settings, build(settings))]
        return built[0][1]

    return current
