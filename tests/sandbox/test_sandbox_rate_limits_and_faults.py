"""Rate limiting per token, API-side fault injection, and request accounting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from local.calendly_sandbox import CalendlySandbox, TokenSpec
from tests.sandbox.conftest import FAST_CONFIG
from tests.sandbox.helpers import Api, wait_until


@pytest.fixture
def limited() -> Iterator[CalendlySandbox]:
    """A sandbox scaled down to 5 requests per 1.5 s window per token."""
    with CalendlySandbox(replace(FAST_CONFIG, rate_limit=5, rate_window_seconds=1.5)) as running:
        yield running


def test_headers_count_down_and_the_limit_answers_429(limited: CalendlySandbox) -> None:
    # Given a token on a 5-per-window limit
    client = Api(limited.base_url, limited.add_token(TokenSpec()))

    # When it makes six requests
    responses = [client.get("/users/me") for _ in range(6)]

    # Then the first five succeed with a falling Remaining, and the sixth is Calendly's 429
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2", "1", "0", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "5" for r in responses)
    assert all(0 <= int(r.headers["X-RateLimit-Reset"]) <= 2 for r in responses)
    assert responses[-1].json()["title"] == "Too Many Requests"


def test_limit_is_per_token_and_resets_with_the_window(limited: CalendlySandbox) -> None:
    # Given one token that has used up its window
    exhausted = Api(limited.base_url, limited.add_token(TokenSpec()))
    for _ in range(5):
        exhausted.get("/users/me")
    assert exhausted.get("/users/me").status_code == 429

    # When another token calls, and the first waits for its window to pass
    other = Api(limited.base_url, limited.add_token(TokenSpec())).get("/users/me")
    recovered = wait_until(lambda: exhausted.get("/users/me").status_code == 200, timeout=5, interval=0.1)

    # Then the other token was never limited, and the first is served again
    assert other.status_code == 200
    assert recovered


def test_burst_429_fault_refuses_the_next_requests(sandbox: CalendlySandbox, api: Api) -> None:
    # Given the 429 fault armed for two requests
    sandbox.faults.rate_limit_burst_429 = 2

    # When three requests are made
    statuses = [api.get("/users/me") for _ in range(3)]

    # Then two 429s (reporting nothing remaining) precede a success
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["X-RateLimit-Remaining"] == "0"


def test_server_error_fault_answers_500_once(sandbox: CalendlySandbox, api: Api) -> None:
    # Given the 5xx fault armed for one request
    sandbox.faults.server_errors = 1

    # When two requests are made
    first, second = api.get("/users/me"), api.get("/users/me")

    # Then the first is Calendly's 500 body and the second succeeds
    assert first.status_code == 500
    assert first.json()["title"] == "Internal Server Error"
    assert second.status_code == 200


def test_latency_fault_slows_api_calls(sandbox: CalendlySandbox, api: Api) -> None:
    # Given 0.2 s of injected latency
    sandbox.faults.latency_seconds = 0.2

    # When a request is timed
    started = time.monotonic()
    response = api.get("/users/me")

    # Then it took at least that long
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_settings_are_validated(sandbox: CalendlySandbox) -> None:
    # When a probability outside [0, 1] or a negative counter is set
    # Then the sandbox refuses it instead of silently misbehaving
    with pytest.raises(ValueError, match="probability"):
        sandbox.faults.drop_deliveries = 1.5
    with pytest.raises(ValueError, match="server_errors"):
        sandbox.faults.server_errors = -1


def test_request_counting_and_reset(sandbox: CalendlySandbox, api: Api) -> None:
    # Given a few API calls
    api.get("/users/me")
    api.get("/users/me")
    api.get("/event_types", organization=sandbox.organization_uri)
    api.get("/no_such_path")

    # When they are counted by method and path prefix
    # Then the counts and the log agree, and reset_counts starts over
    assert sandbox.requests_count() == 4
    assert sandbox.requests_count(method="GET", path_prefix="/users") == 2
    assert sandbox.requests_count(path_prefix="/event_types") == 1
    assert [(method, path, status) for method, path, status, _ in sandbox.request_log][-1] == (
        "GET",
        "/no_such_path",
        404,
    )
    sandbox.reset_counts()
    assert sandbox.requests_count() == 0
