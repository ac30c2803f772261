"""Calendly API v2 over HTTPS: bearer auth, timeouts, pacing, bounded retries, every page, checked answers.

One ``requests.Session`` per process. Before a request, the client waits out the rate-limit
window when the last answer said none are left (``X-RateLimit-Remaining`` /
``X-RateLimit-Reset``, a duration in seconds), so a steady reader never meets a 429. A 429
still waits for the reset; 5xx, timeouts and connection errors back off with jitter; other
4xx are never retried. Whatever remains becomes ``CalendlyRejected`` (4xx) or
``CalendlyUnavailable``; a wait that would pass the caller's deadline raises
``TimeBudgetExhausted`` instead, so a Lambda can checkpoint and stop.

A 200 is not trusted blindly: a single-resource read must answer ``{"resource": {...}}``, a
list ``{"collection": [objects], "pagination": {"next_page_token": null | "..."}}``, and every
``*_at`` / ``*_time`` member a plausible time; anything else (an empty body included: it is
never "the last page") raises ``CalendlyAnswerInvalid``. Redirects are never followed: the
token and a new subscription's signing key go to the configured host or nowhere.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, NamedTuple

import requests

from calendly_sync import calendly_json
from calendly_sync.errors import (
    CalendlyAnswerInvalid,
    CalendlyRejected,
    CalendlyUnavailable,
    TimeBudgetExhausted,
)

# Calendly's own delivery timeouts are 10 s connect, 15 s read; our reads are smaller calls.
TIMEOUT_SECONDS = (5.0, 15.0)
MAX_PAGE_SIZE = 100
# Calendly's rate-limit window is one minute: a longer X-RateLimit-Reset is nonsense, not a plan.
MAX_RATE_LIMIT_WAIT_SECONDS = 60.0
# Far outside anything Calendly schedules, far inside what datetime arithmetic survives.
PLAUSIBLE_YEARS = range(1970, 3000)

# The last path segment of every paginated list endpoint (OpenAPI description and api-facts.md).
_LIST_ENDPOINTS = frozenset(
    {
        "scheduled_events",
        "invitees",
        "event_types",
        "organization_memberships",
        "webhook_subscriptions",
        "invitations",
        "routing_forms",
        "routing_form_submissions",
        "activity_log_entries",
    }
)

Shape = Literal["resource", "list", "any"]


@cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    session.headers["User-Agent"] = "calendly-sync"
    return session


@dataclass
class CallStats:
    """What one client did: the poller's metrics and the benchmarks read these."""

    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    invalid_answers: int = 0  # redirects and unusable 2xx bodies (retried or not)
    rate_headers_ignored: int = 0  # X-RateLimit-* present but not finite, non-negative numbers


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 1  # 1 = no retry (interactive calls answer at once)
    base_delay: float = 0.5
    max_delay: float = 8.0


POLLING_RETRIES = RetryPolicy(attempts=5)


class Page(NamedTuple):
    """One page of a list: its items, and the token of the next page (None on the last)."""

    items: list[dict[str, Any]]
    next_page_token: str | None


class CalendlyClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        session: requests.Session | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        deadline: float | None = None,
        timeout: tuple[float, float] = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        #: ``(connect, read)`` seconds for each request.
        self._timeout = timeout
        self._token = token
        self._session = session or _session()
        self._retry = retry
        #: ``clock()`` value after which no wait may end (None: no limit).
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self._remaining: int | None = None
        self._reset_seconds: float | None = None
        self.stats = CallStats()

    def __repr__(self) -> str:  # never show the token
        return f"CalendlyClient({self._base_url!r})"

    def current_user(self) -> dict[str, Any]:
        """``GET /users/me``: the token's owner, with ``current_organization``."""
        resource: dict[str, Any] = self.get("/users/me")["resource"]
        return resource

    def scheduled_events(self, organization: str, **filters: str) -> Iterator[dict[str, Any]]:
        """Every scheduled event of the organization matching ``filters`` (all pages)."""
        yield from self.collection("/scheduled_events", {"organization": organization, **filters})

    def invitees(self, event_uri: str) -> Iterator[dict[str, Any]]:
        yield from self.collection(
            f"/scheduled_events/{event_uri.rstrip('/').rsplit('/', 1)[-1]}/invitees", {}
        )

    def page(self, path: str, params: Mapping[str, str], page_token: str | None = None) -> Page:
        """One page of the list at ``path``: ``params`` as given, plus ``page_token`` when set.

        For callers that checkpoint between pages or restart a page; ``collection`` reads them all.
        """
        query = {**params, **({"page_token": page_token} if page_token else {})}
        answer = self._call("GET", path, params=query, body=None, expect="list")
        return Page(answer["collection"], answer["pagination"]["next_page_token"])

    def collection(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Follow ``next_page_token`` until it is null, keeping the other query parameters."""
        query = {**params, "count": str(MAX_PAGE_SIZE)}
        token: str | None = None
        while True:
            items, next_token = self.page(path, query, token)
            yield from items
            if next_token is None:
                return
            if next_token == token:
                # Following it would read the same page forever.
                self.stats.invalid_answers += 1
                raise CalendlyAnswerInvalid(
                    f"Calendly answered GET {path} with the same next_page_token again"
                )
            token = next_token

    def webhook_subscriptions(
        self, organization: str, scope: str, user: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {"organization": organization, "scope": scope, **({"user": user} if user else {})}
        yield from self.collection("/webhook_subscriptions", params)

    def create_webhook_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = self._call("POST", "/webhook_subscriptions", params=None, body=body, expect="resource")
        resource: dict[str, Any] = answer["resource"]
        return resource

    def delete_webhook_subscription(self, uri: str) -> None:
        self.request("DELETE", f"/webhook_subscriptions/{uri.rstrip('/').rsplit('/', 1)[-1]}")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A checked GET: ``{"resource": {...}}``, or ``collection`` and ``pagination`` for a list path."""
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call, paced and retried by the policy; 2xx answers its JSON body (``{}`` for 204)."""
        return self._call(method, path, params=params, body=body, expect=_shape_for(method, path))

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        expect: Shape,
    ) -> dict[str, Any]:
        method = method.upper()
        for attempt in range(1, self._retry.attempts + 1):
            self._pace()
            try:
                response = self._session.request(
                    method,
                    f"{self._base_url}{path}",
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=self._timeout,
                    # A redirect would carry the token (and a signing key in the body) elsewhere.
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                self.stats.requests += 1
                self._back_off(attempt, CalendlyUnavailable(f"Calendly unreachable ({type(error).__name__})"))
                continue
            self.stats.requests += 1
            self._note_rate_limit(response)
            status = response.status_code
            if 300 <= status < 400:
                self.stats.invalid_answers += 1
                raise CalendlyAnswerInvalid(
                    f"Calendly answered {status} (a redirect) to {method} {path}: redirects are never "
                    "followed; check CALENDLY_API_BASE_URL"
                )
            if status == 429:
                self.stats.throttled += 1
                if attempt < self._retry.attempts:
                    self.stats.retries += 1
                    self._wait(self._throttled_wait(attempt))
                    self._remaining = None  # that wait was the window's reset: do not wait it twice
                    continue
                raise CalendlyUnavailable(f"Calendly answered 429 to {method} {path}")
            if status >= 500:
                self._back_off(attempt, CalendlyUnavailable(f"Calendly answered {status} to {method} {path}"))
                continue
            if status >= 400:
                raise _rejected(response)
            try:
                return _checked_answer(response, method, path, expect)
            except CalendlyAnswerInvalid as invalid:
                self.stats.invalid_answers += 1
                if method != "GET":
                    raise  # the first POST or DELETE may have taken effect: never send it twice
                self._back_off(attempt, invalid)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _pace(self) -> None:
        if self._remaining is not None and self._remaining <= 0 and self._reset_seconds is not None:
            self._wait(self._reset_seconds)
            self._remaining = None

    def _note_rate_limit(self, response: requests.Response) -> None:
        raw_remaining = response.headers.get("X-RateLimit-Remaining")
        raw_reset = response.headers.get("X-RateLimit-Reset")
        remaining = _non_negative(raw_remaining)
        reset = _non_negative(raw_reset)
        if remaining is None or reset is None or not remaining.is_integer():
            if raw_remaining is not None or raw_reset is not None:
                self.stats.rate_headers_ignored += 1
            # Unknown: do not pace on it; a 429 still waits (see _throttled_wait).
            self._remaining = self._reset_seconds = None
            return
        self._remaining = int(remaining)
        self._reset_seconds = min(reset, MAX_RATE_LIMIT_WAIT_SECONDS)

    def _throttled_wait(self, attempt: int) -> float:
        if self._reset_seconds is not None:
            return max(self._reset_seconds, 1.0)
        return max(self._back_off_delay(attempt), 1.0)

    def _back_off(self, attempt: int, failure: CalendlyUnavailable) -> None:
        if attempt >= self._retry.attempts:
            raise failure
        self.stats.retries += 1
        self._wait(self._back_off_delay(attempt))

    def _back_off_delay(self, attempt: int) -> float:
        delay = min(self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None and self._clock() + seconds > self.deadline:
            raise TimeBudgetExhausted(f"waiting {seconds:.1f} s for Calendly would pass the time budget")
        self._sleep(seconds)


def _non_negative(raw: str | None) -> float | None:
    """A finite, non-negative number, or None (absent, ``nan``, ``inf``, ``-5``, ``soon``)."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _shape_for(method: str, path: str) -> Shape:
    if method.upper() != "GET":
        return "any"
    return "list" if path.rstrip("/").rsplit("/", 1)[-1] in _LIST_ENDPOINTS else "resource"


def _rejected(response: requests.Response) -> CalendlyRejected:
    title, message, parameters = _error_body(response)
    return CalendlyRejected(
        f"Calendly answered {response.status_code} {title}: {message}",
        status=response.status_code,
        title=title,
        detail=message,
        parameters=parameters,
    )


def _checked_answer(response: requests.Response, method: str, path: str, expect: Shape) -> dict[str, Any]:
    def invalid(what: str) -> CalendlyAnswerInvalid:
        return CalendlyAnswerInvalid(f"Calendly answered {method} {path} with {what}")

    if response.status_code == 204 or (not response.content and expect == "any"):
        return {}
    if not response.content:
        raise invalid("an empty body")  # never "the last page": the rest would be skipped unseen
    try:
        # Not requests' .json(): a number JSON or PutEvents cannot carry stays its own text.
        answer = calendly_json.loads(response.content)
    except ValueError:
        raise invalid("a body that is not JSON") from None
    if not isinstance(answer, dict):
        raise invalid(f"JSON {type(answer).__name__} where an object belongs")
    if expect == "resource" and not isinstance(answer.get("resource"), dict):
        raise invalid('no "resource" object')
    if expect == "list":
        problem = _list_problem(answer)
        if problem:
            raise invalid(problem)
    problem = _time_problem(answer)
    if problem:
        raise invalid(problem)
    return answer


def _list_problem(answer: dict[str, Any]) -> str | None:
    collection = answer.get("collection")
    if not isinstance(collection, list):
        return 'no "collection" list'
    if not all(isinstance(item, dict) for item in collection):
        return 'a "collection" holding something other than objects'
    pagination = answer.get("pagination")
    if not isinstance(pagination, dict):
        return 'no "pagination" object'
    if "next_page_token" not in pagination:
        return 'a "pagination" without next_page_token'
    token = pagination["next_page_token"]
    if token is not None and not (isinstance(token, str) and token):
        return "a next_page_token that is neither null nor a non-empty string"
    return None


def _time_problem(answer: dict[str, Any]) -> str | None:
    """The first ``*_at`` / ``*_time`` text that is not a plausible ISO-8601 time.

    Only text is judged: a number under such a name is no timestamp (``max_booking_time`` is
    minutes) and is left to the code that reads the member.
    """
    pending: list[Any] = [answer]  # a loop, not recursion: JSON nests as deep as the parser allows
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if isinstance(value, str):
                if key.endswith(("_at", "_time")) and not _plausible_time(value):
                    return f"an impossible time in {key!r}"
            elif isinstance(value, dict | list):
                pending.append(value)
    return None


def _plausible_time(value: str) -> bool:
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return parsed.year in PLAUSIBLE_YEARS


def _error_body(response: requests.Response) -> tuple[str, str, tuple[str, ...]]:
    """Calendly's ``title``, ``message`` and the parameters its ``details`` name (each may be absent)."""
    try:
        body = calendly_json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return response.reason or "Error", "", ()
    details = body.get("details")
    parameters = tuple(
        str(detail["parameter"])
        for detail in (details if isinstance(details, list) else [])
        if isinstance(detail, dict) and detail.get("parameter") is not None
    )
    return str(body.get("title", response.reason)), str(body.get("message", "")), parameters
