"""The one error-to-status mapping, and typed settings."""

from __future__ import annotations

import pytest

from calendly_sync.errors import (
    CalendlyAnswerInvalid,
    CalendlySyncError,
    CalendlyUnavailable,
    ConfigurationError,
    NotAnEnvelope,
    PayloadTooLarge,
    SecretUnavailable,
    SignatureRejected,
    StorageUnavailable,
    http_status_for,
)
from calendly_sync.settings import Settings, built_per_settings, get_settings


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


@pytest.mark.parametrize(
    "url",
    [
        "https://api.calendly.com",
        "https://api.calendly.com/",
        "https://proxy.example.com/calendly",
        "http://127.0.0.1:9000",
        "http://localhost:8080/",
        "http://[::1]:9000",
    ],
)
def test_the_calendly_base_url_is_https_or_a_loopback_sandbox(url: str) -> None:
    settings = Settings.from_environment({"TABLE_NAME": "t", "CALENDLY_API_BASE_URL": url})
    assert settings.calendly_api_base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.calendly.com", "must use https://"),
        ("http://10.0.0.5:8080", "must use https://"),
        ("http://127.0.0.1.example.com", "must use https://"),
        ("ftp://api.calendly.com", "must use https://"),
        ("api.calendly.com", "must be an absolute URL"),
        ("https://", "must be an absolute URL"),
        ("https://api.calendly.com:99999", "must be an absolute URL"),
        ("https://api.calendly.com/?redirect=x", "must not carry credentials, a query or a fragment"),
    ],
)
def test_a_calendly_base_url_that_could_leak_the_token_is_refused(url: str, message: str) -> None:
    # The token rides in every request's Authorization header: never over plain http off the machine.
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_environment({"TABLE_NAME": "t", "CALENDLY_API_BASE_URL": url})


def test_a_refused_base_url_with_credentials_is_not_repeated_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment({"TABLE_NAME": "t", "CALENDLY_API_BASE_URL": "https://me:hunter2@host"})
    assert "hunter2" not in str(raised.value)


def test_an_invalid_calendly_answer_is_a_kind_of_unavailable_with_its_own_reason() -> None:
    # Callers stop and keep what is stored (as for an outage); metrics count it apart.
    error = CalendlyAnswerInvalid("Calendly answered GET /users/me with an empty body")
    assert isinstance(error, CalendlyUnavailable)
    assert error.reason == "calendly_answer_invalid"


def test_what_a_handler_builds_is_built_once_and_again_only_for_new_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a handler's builder, and settings read from the environment
    monkeypatch.setenv("TABLE_NAME", "first-table")
    get_settings.cache_clear()
    built: list[str] = []

    def build(settings: Settings) -> str:
        built.append(settings.table_name)
        return f"adapter for {settings.table_name}"

    dependencies = built_per_settings(build)
    assert built == []  # nothing at import time

    # When it is asked for three times, the environment changing (and the settings read again)
    # before the third, as a new container would
    first, second = dependencies(), dependencies()
    monkeypatch.setenv("TABLE_NAME", "second-table")
    get_settings.cache_clear()
    third = dependencies()
    get_settings.cache_clear()

    # Then nothing was built before the first call, once for the first settings, once for the new
    assert built == ["first-table", "second-table"]
    assert first is second and third == "adapter for second-table"
