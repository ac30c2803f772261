"""The Calendly client against a scripted session: no sockets, a fake clock, every answer checked.

Each test scripts what "Calendly" answers, in order, and asserts what the client did with it:
pacing, retries, 429s, 5xx, timeouts, refused redirects, malformed answers and nonsense
rate-limit headers. Nothing here sleeps for real.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from calendly_sync.adapters.calendly import (
    MAX_RATE_LIMIT_WAIT_SECONDS,
    POLLING_RETRIES,
    TIMEOUT_SECONDS,
    CalendlyClient,
    Page,
    RetryPolicy,
)
from calendly_sync.errors import (
    CalendlyAnswerInvalid,
    CalendlyRejected,
    CalendlyUnavailable,
    TimeBudgetExhausted,
)

TOKEN = "client-test-token-0123456789"
BASE = "https://api.calendly.com"
EVENT = {
    "uri": f"{BASE}/scheduled_events/AAA",
    "start_time": "2030-03-01T10:00:00.000000Z",
    "end_time": "2030-03-01T10:30:00.000000Z",
    "created_at": "2030-02-01T10:00:00.000000Z",
    "updated_at": "2030-02-01T10:00:00.000000Z",
}
ME = {"resource": {"uri": f"{BASE}/users/ME", "current_organization": f"{BASE}/organizations/ORG"}}


def listing(items: list[Any], next_token: str | None = None) -> dict[str, Any]:
    return {"collection": items, "pagination": {"count": len(items), "next_page_token": next_token}}


def answer(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    response.headers.update(headers or {})
    response.reason = {200: "OK", 404: "Not Found"}.get(status, "")
    return response


@dataclass
class Sent:
    method: str
    url: str
    params: dict[str, str] | None
    json: Any
    headers: dict[str, str]
    allow_redirects: bool
    timeout: Any = None


@dataclass
class ScriptedSession:
    """Answers each request with the next scripted response (or raises the scripted exception)."""

    script: list[requests.Response | Exception]
    sent: list[Sent] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append(
            Sent(
                method,
                url,
                kwargs.get("params"),
                kwargs.get("json"),
                kwargs.get("headers", {}),
                kwargs.get("allow_redirects", True),
                kwargs.get("timeout"),
            )
        )
        if not self.script:
            raise AssertionError(f"unscripted request {method} {url}")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@dataclass
class FakeTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def client_for(
    script: list[requests.Response | Exception],
    fake_time: FakeTime,
    *,
    retry: RetryPolicy = POLLING_RETRIES,
    deadline: float | None = None,
    **options: Any,
) -> tuple[CalendlyClient, ScriptedSession]:
    session = ScriptedSession(list(script))
    client = CalendlyClient(
        BASE,
        TOKEN,
        session,  # type: ignore[arg-type]  # duck-typed: only .request is used
        retry=retry,
        deadline=deadline,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        **options,
    )
    return client, session


# --- the happy path: auth, pages, redirects never followed ---------------------------------------


def test_every_request_carries_the_token_and_refuses_redirects(fake_time: FakeTime) -> None:
    client, session = client_for([answer(body=ME)], fake_time)

    assert client.current_user()["uri"] == f"{BASE}/users/ME"

    (sent,) = session.sent
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.allow_redirects is False
    assert TOKEN not in repr(client)


def test_every_request_is_bounded_by_the_timeout_given_or_the_default(fake_time: FakeTime) -> None:
    # Given a client built with no timeout, and one with a short one
    default, default_session = client_for([answer(body=ME)], fake_time)
    short, short_session = client_for([answer(body=ME)], fake_time, timeout=(1.0, 0.3))

    # When each makes a request
    default.current_user()
    short.current_user()

    # Then each request carries its client's (connect, read) timeout
    assert default_session.sent[0].timeout == TIMEOUT_SECONDS
    assert short_session.sent[0].timeout == (1.0, 0.3)


def test_collection_follows_every_page_and_keeps_the_other_parameters(fake_time: FakeTime) -> None:
    second = {**EVENT, "uri": f"{BASE}/scheduled_events/BBB"}
    client, session = client_for(
        [answer(body=listing([EVENT], "tok-2")), answer(body=listing([second]))], fake_time
    )

    found = list(client.scheduled_events("ORG", status="active"))

    assert [event["uri"] for event in found] == [EVENT["uri"], second["uri"]]
    assert session.sent[0].params == {"organization": "ORG", "status": "active", "count": "100"}
    assert session.sent[1].params == {**session.sent[0].params, "page_token": "tok-2"}


def test_page_answers_one_page_and_its_next_token(fake_time: FakeTime) -> None:
    client, session = client_for([answer(body=listing([EVENT], "tok-2"))], fake_time)

    page = client.page("/scheduled_events", {"organization": "ORG", "count": "100"}, "tok-1")

    assert page == Page([EVENT], "tok-2")
    assert session.sent[0].params == {"organization": "ORG", "count": "100", "page_token": "tok-1"}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_clear_failure_never_followed_nor_retried(fake_time: FakeTime, status: int) -> None:
    # Given Calendly (or something in the way) redirecting the subscription POST elsewhere
    redirect = answer(status, headers={"Location": "https://elsewhere.example/hook"})
    client, session = client_for([redirect], fake_time)

    # When a subscription carrying a signing key is created
    with pytest.raises(
        CalendlyAnswerInvalid, match=rf"{status} \(a redirect\) to POST /webhook_subscriptions"
    ):
        client.create_webhook_subscription({"url": "https://hooks.example/x", "signing_key": "secret"})

    # Then exactly one request went out, to Calendly, and it is counted
    assert [s.url for s in session.sent] == [f"{BASE}/webhook_subscriptions"]
    assert client.stats.invalid_answers == 1
    assert fake_time.slept == []


def test_delete_answers_nothing_on_204(fake_time: FakeTime) -> None:
    client, session = client_for([answer(204)], fake_time)

    client.delete_webhook_subscription(f"{BASE}/webhook_subscriptions/SUB")

    assert session.sent[0].method == "DELETE"
    assert session.sent[0].url == f"{BASE}/webhook_subscriptions/SUB"


# --- malformed answers: a clear, counted failure, never a crash or a silent end ------------------

MALFORMED_LISTS = {
    "empty body": answer(raw=b""),
    "not JSON": answer(raw=b"<html>gateway</html>"),
    "JSON list": answer(body=[]),
    "JSON null": answer(raw=b"null"),
    "no collection": answer(body={"pagination": {"next_page_token": None}}),
    "collection is null": answer(body={"collection": None, "pagination": {"next_page_token": None}}),
    "collection of null": answer(body={"collection": [None], "pagination": {"next_page_token": None}}),
    "no pagination": answer(body={"collection": [EVENT]}),
    "pagination without next_page_token": answer(body={"collection": [EVENT], "pagination": {}}),
    "empty next_page_token": answer(body=listing([EVENT], "")),
    "numeric next_page_token": answer(body={"collection": [], "pagination": {"next_page_token": 7}}),
    "year 99999": answer(body=listing([{**EVENT, "start_time": "99999-01-01T00:00:00Z"}])),
    "year 1 with an offset": answer(body=listing([{**EVENT, "updated_at": "0001-01-01T00:00:00+05:00"}])),
    "not a time": answer(body=listing([{**EVENT, "end_time": "soon"}])),
    "an empty time": answer(body=listing([{**EVENT, "created_at": ""}])),
    "nested impossible time": answer(
        body=listing([{**EVENT, "cancellation": {"created_at": "2030-13-45T00:00:00Z"}}])
    ),
    "deeply nested": answer(raw=b"[" * 100_000 + b"]" * 100_000),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_LISTS))
def test_a_malformed_list_answer_is_a_clear_counted_failure(fake_time: FakeTime, case: str) -> None:
    # Given a list read whose 200 answer is unusable, with no retries allowed
    client, _ = client_for([MALFORMED_LISTS[case]], fake_time, retry=RetryPolicy(attempts=1))

    # When the list is read
    with pytest.raises(CalendlyAnswerInvalid) as raised:
        list(client.scheduled_events("ORG"))

    # Then one project error names the call (never the token), and it is counted
    assert "GET /scheduled_events" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert raised.value.reason == "calendly_answer_invalid"
    assert isinstance(raised.value, CalendlyUnavailable)  # callers stop and keep what is stored
    assert client.stats.invalid_answers == 1


@pytest.mark.parametrize(
    "body",
    [None, [], {"resource": None}, {"resource": []}, {"collection": []}, {"resource": {"created_at": "x"}}],
)
def test_a_resource_read_needs_a_resource_object(fake_time: FakeTime, body: Any) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    client, _ = client_for([answer(raw=raw)], fake_time, retry=RetryPolicy(attempts=1))

    with pytest.raises(CalendlyAnswerInvalid, match="GET /users/me"):
        client.current_user()


def test_get_checks_list_paths_as_lists(fake_time: FakeTime) -> None:
    # Given a list path answering a resource (what a misrouted proxy might do)
    client, _ = client_for([answer(body=ME)], fake_time, retry=RetryPolicy(attempts=1))

    with pytest.raises(CalendlyAnswerInvalid, match='GET /event_types with no "collection" list'):
        client.get("/event_types", {"organization": "ORG", "count": "1"})


def test_a_malformed_get_is_retried_and_the_good_answer_used(fake_time: FakeTime) -> None:
    # Given a truncated body once, then a good page
    client, session = client_for(
        [answer(raw=b'{"collection": [{"u'), answer(body=listing([EVENT]))], fake_time
    )

    found = list(client.scheduled_events("ORG"))

    assert found == [EVENT]
    assert len(session.sent) == 2
    assert client.stats.invalid_answers == 1
    assert client.stats.retries == 1


def test_a_malformed_post_answer_is_never_sent_twice(fake_time: FakeTime) -> None:
    # Given the subscription POST answered 201 with no resource
    client, session = client_for([answer(201, {"unexpected": True}), answer(201, ME)], fake_time)

    with pytest.raises(CalendlyAnswerInvalid, match="POST /webhook_subscriptions"):
        client.create_webhook_subscription({"url": "https://hooks.example/x"})

    # Then it was not re-sent (the first may have created the subscription)
    assert len(session.sent) == 1


def test_a_page_token_that_repeats_ends_with_a_failure_not_a_loop(fake_time: FakeTime) -> None:
    client, session = client_for(
        [answer(body=listing([EVENT], "same")), answer(body=listing([EVENT], "same"))], fake_time
    )

    with pytest.raises(CalendlyAnswerInvalid, match="same next_page_token"):
        list(client.scheduled_events("ORG"))
    assert len(session.sent) == 2


def test_an_empty_collection_with_a_null_token_is_the_last_page(fake_time: FakeTime) -> None:
    client, _ = client_for([answer(body=listing([]))], fake_time)

    assert list(client.scheduled_events("ORG")) == []
    assert client.stats.invalid_answers == 0


def test_null_and_plausible_times_pass(fake_time: FakeTime) -> None:
    subscription = {
        "uri": f"{BASE}/webhook_subscriptions/SUB",
        "retry_started_at": None,
        "created_at": "2024-04-04T21:10:40.494211Z",
        "updated_at": "2024-04-04T21:10:40+00:00",
        "max_booking_time": 90,  # minutes, not a timestamp: numbers are left to whoever reads them
    }
    client, _ = client_for([answer(body=listing([subscription]))], fake_time)

    assert list(client.webhook_subscriptions("ORG", "organization")) == [subscription]


# --- errors, retries, pacing ---------------------------------------------------------------------


def test_a_4xx_is_rejected_at_once_with_calendlys_message(fake_time: FakeTime) -> None:
    body = {"title": "Permission Denied", "message": "Please upgrade your Calendly account to Standard"}
    client, session = client_for([answer(403, body)], fake_time)

    with pytest.raises(CalendlyRejected) as raised:
        client.get("/users/me")

    assert raised.value.status == 403
    assert raised.value.detail == body["message"]
    assert len(session.sent) == 1


def test_a_stale_page_token_is_named_in_the_rejection(fake_time: FakeTime) -> None:
    # Given Calendly's answer to a page token that went stale (api-facts.md, "Reading data")
    stale = {
        "title": "Invalid Argument",
        "message": "The supplied parameters are invalid.",
        "details": [{"parameter": "page_token", "message": "is invalid"}],
    }
    client, _ = client_for([answer(400, stale)], fake_time)

    with pytest.raises(CalendlyRejected) as raised:
        client.page("/scheduled_events", {"organization": "ORG"}, "old-token")

    # Then the caller can tell it from other 400s and restart the listing
    assert raised.value.status == 400
    assert raised.value.parameters == ("page_token",)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"null", b'{"details": "oops"}'])
def test_a_4xx_with_an_odd_body_is_still_a_clear_rejection(fake_time: FakeTime, raw: bytes) -> None:
    client, _ = client_for([answer(404, raw=raw)], fake_time)

    with pytest.raises(CalendlyRejected) as raised:
        client.get("/scheduled_events/NOPE")

    assert raised.value.status == 404


def test_5xx_and_timeouts_back_off_then_succeed(fake_time: FakeTime) -> None:
    client, session = client_for(
        [answer(502), requests.ConnectTimeout("slow"), answer(503), answer(body=ME)], fake_time
    )

    assert client.current_user()["uri"] == ME["resource"]["uri"]

    assert len(session.sent) == 4
    assert client.stats.retries == 3
    # Exponential back-off with jitter: each wait within [half, full] of 0.5, 1, 2 s
    for waited, full in zip(fake_time.slept, [0.5, 1.0, 2.0], strict=True):
        assert full / 2 <= waited <= full


def test_5xx_to_the_last_attempt_is_unavailable(fake_time: FakeTime) -> None:
    client, session = client_for([answer(500)] * 5, fake_time)

    with pytest.raises(CalendlyUnavailable, match="500 to GET /users/me"):
        client.current_user()
    assert len(session.sent) == 5


def test_a_429_waits_for_the_reset_then_retries(fake_time: FakeTime) -> None:
    throttled = answer(429, {"title": "Too Many Requests"}, headers=rate(remaining="0", reset="7"))
    client, _ = client_for([throttled, answer(body=ME)], fake_time)

    client.current_user()

    assert fake_time.slept == [7.0]
    assert client.stats.throttled == 1


def test_an_exhausted_window_is_waited_out_before_the_next_request(fake_time: FakeTime) -> None:
    # Given an answer saying no requests remain for 12 s
    client, _ = client_for(
        [answer(body=ME, headers=rate(remaining="0", reset="12")), answer(body=ME)], fake_time
    )

    client.current_user()
    assert fake_time.slept == []
    client.current_user()

    # Then the second request waited first, and no 429 was ever met
    assert fake_time.slept == [12.0]
    assert client.stats.throttled == 0


def test_a_wait_past_the_deadline_raises_time_budget_exhausted(fake_time: FakeTime) -> None:
    throttled = answer(429, headers=rate(remaining="0", reset="30"))
    client, _ = client_for([throttled], fake_time, deadline=10.0)

    with pytest.raises(TimeBudgetExhausted):
        client.current_user()
    assert fake_time.slept == []


def rate(*, remaining: str, reset: str) -> dict[str, str]:
    return {"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset}


@pytest.mark.parametrize(
    ("remaining", "reset"),
    [("0", "nan"), ("0", "-5"), ("0", "inf"), ("0", "soon"), ("-1", "5"), ("nan", "5"), ("0.5", "5")],
)
def test_nonsense_rate_headers_are_ignored_not_slept_on(
    fake_time: FakeTime, remaining: str, reset: str
) -> None:
    # Given an answer with rate headers that are not finite, non-negative numbers
    client, _ = client_for(
        [answer(body=ME, headers=rate(remaining=remaining, reset=reset)), answer(body=ME)], fake_time
    )

    # When two requests follow each other
    client.current_user()
    client.current_user()

    # Then nothing crashed, nothing waited, and the headers were counted as ignored
    assert fake_time.slept == []
    assert client.stats.rate_headers_ignored == 1


def test_a_429_with_nonsense_headers_backs_off_a_bounded_time(fake_time: FakeTime) -> None:
    throttled = answer(429, headers=rate(remaining="0", reset="nan"))
    client, _ = client_for([throttled, throttled, answer(body=ME)], fake_time)

    client.current_user()

    assert len(fake_time.slept) == 2
    assert all(1.0 <= waited <= POLLING_RETRIES.max_delay for waited in fake_time.slept)


def test_a_huge_reset_is_capped_at_calendlys_window(fake_time: FakeTime) -> None:
    client, _ = client_for(
        [answer(body=ME, headers=rate(remaining="0", reset="86400")), answer(body=ME)], fake_time
    )

    client.current_user()
    client.current_user()

    assert fake_time.slept == [MAX_RATE_LIMIT_WAIT_SECONDS]


def test_retried_failures_end_with_the_last_cause(fake_time: FakeTime) -> None:
    client, _ = client_for([answer(raw=b"")] * 5, fake_time)

    with pytest.raises(CalendlyAnswerInvalid, match="an empty body"):
        list(client.invitees(f"{BASE}/scheduled_events/AAA"))
    assert client.stats.invalid_answers == 5
    assert client.stats.retries == 4
