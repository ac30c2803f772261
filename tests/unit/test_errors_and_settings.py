"""The one error-to-status mapping, and typed settings."""

from __future__ import annotations

import pytest

from calendly_sync.errors import (
    CalendlySyncError,
    ConfigurationError,
    NotAnEnvelope,
    PayloadTooLarge,
    SecretUnavailable,
    SignatureRejected,
    StorageUnavailable,
    http_status_for,
)
from calendly_sync.settings import Settings


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SignatureRejected("x", reason="stale"), 401),
        (NotAnEnvelope("x"), 400),
        (PayloadTooLarge("x"), 413),
        (StorageUnavailable("x"), 503),
        (SecretUnavailable("x"), 503),
        (ConfigurationError("x"), 500),
        (CalendlySyncError("x"), 500),
    ],
)
def test_each_error_maps_to_its_documented_status(error: CalendlySyncError, status: int) -> None:
    assert http_status_for(error) == status


def test_settings_defaults_follow_calendly_facts() -> None:
    settings = Settings.from_environment({"TABLE_NAME": "t"})
    assert settings.signature_tolerance_seconds == 180
    assert settings.calendly_api_base_url == "https://api.calendly.com"
    assert settings.max_webhook_body_bytes == 256 * 1024


def test_settings_read_wiring_and_trim_the_base_url() -> None:
    settings = Settings.from_environment(
        {
            "TABLE_NAME": "t",
            "CALENDLY_API_BASE_URL": "http://127.0.0.1:9000/",
            "MAX_WEBHOOK_BODY_BYTES": "1024",
        }
    )
    assert settings.calendly_api_base_url == "http://127.0.0.1:9000"
    assert settings.max_webhook_body_bytes == 1024


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "TABLE_NAME is not set"),
        ({"TABLE_NAME": "t", "MAX_WEBHOOK_BODY_BYTES": "lots"}, "must be a whole number"),
        ({"TABLE_NAME": "t", "SIGNATURE_TOLERANCE_SECONDS": "-5"}, "must be positive"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_environment(environ)
