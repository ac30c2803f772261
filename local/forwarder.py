"""Forwarding to a URL on one machine: what ``ForwardRule``'s API destination does in AWS.

moto runs EventBridge rules but sends nothing to an API destination's URL, so the local
runner gives ``ForwardRule`` an SQS queue as its target and ``LocalForwarder`` plays the API
destination: it POSTs each event, as EventBridge would (the whole event as JSON, the
connection's API-key header with its secret), never follows a redirect (a 3xx is a failed
invocation, so the secret goes to the forward URL's origin only), times a request out at 5 s,
retries what EventBridge retries (timeouts included), and keeps what it gives up on in a
dead-letter list, as the target's ``DeadLetterConfig`` would.

``LoopbackEndpoint`` is a flow URL on loopback (an integration platform's trigger, say) that
records what arrives; the demo and the tests point ``ForwardUrl`` at it.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import requests
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from local.loopback import StartStop, serve, stop_serving

logger = logging.getLogger(__name__)

#: EventBridge retries an API destination's 401, 407, 409, 429 and 5xx answers (and no answer
#: at all); any other status is final. That includes a 3xx: an API destination does not follow
#: redirects, and "does not retry events associated with error codes 1xx, 2xx, 3xx, and 4xx
#: (other than those noted above)", so a redirect is a failed invocation that goes to the
#: target's dead-letter queue at once (Amazon EventBridge User Guide, "API destinations as
#: targets", section "API destination error codes", eb-api-destinations.html).
RETRIED_STATUSES = frozenset({401, 407, 409, 429})
#: "EventBridge requests to an API destination endpoint must have a maximum client execution
#: timeout of 5 seconds": a slower answer is timed out, and timed-out requests are retried like
#: any other retryable failure (same page). The whole exchange counts, not each socket read.
API_DESTINATION_TIMEOUT_SECONDS = 5.0
#: EventBridge keeps retrying for up to 24 h; locally the schedule is compressed to a few tries.
LOCAL_MAX_RETRIES = 4
USER_AGENT = "Amazon/EventBridge/ApiDestinations"


def retried(status: int | None) -> bool:
    """Whether EventBridge would try an event again after this answer (None: no answer)."""
    return status is None or status in RETRIED_STATUSES or status >= 500


@dataclass(frozen=True)
class DeadLetter:
    """An event the forwarder gave up on: ids and the last answer, never the event's content."""

    event_id: str
    detail_type: str
    change_id: str | None
    attempts: int
    last_status: int | None
    reason: str


class LocalForwarder:
    """Delivers what ``ForwardRule`` put on its queue to the forward URL."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        url: str,
        header_name: str,
        header_secret: str,
        *,
        max_retries: int = LOCAL_MAX_RETRIES,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 2.0,
        timeout: float = API_DESTINATION_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self.url = url
        self.header_name = header_name
        self.__secret = header_secret
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self.timeout = timeout
        self._sleep = sleep
        self._session = requests.Session()
        self._lock = threading.Lock()
        self.delivered = 0
        self.attempts = 0
        self.dead_letters: list[DeadLetter] = []

    def __repr__(self) -> str:  # the secret stays out of reprs, tracebacks and logs
        return f"LocalForwarder(url={self.url!r}, header_name={self.header_name!r}, header_secret=***)"

    def forward_pending(self) -> int:
        """Forward every event on the queue now; returns how many were settled (sent or dead-lettered)."""
        settled = 0
        with self._lock:  # the runner's background loop and a caller may both drain
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
                ).get("Messages", [])
                if not messages:
                    return settled
                for message in messages:
                    self._forward(message["Body"])
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                    settled += 1

    def _forward(self, body: str) -> None:
        status: int | None = None
        reason = ""
        for attempt in range(1, self._max_retries + 2):
            if attempt > 1:
                self._sleep(min(self._backoff * 2 ** (attempt - 2), self._max_backoff))
            self.attempts += 1
            started = time.monotonic()
            try:
                answer = self._session.post(
                    self.url,
                    data=body.encode("utf-8"),
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "User-Agent": USER_AGENT,
                        self.header_name: self.__secret,
                    },
                    timeout=self.timeout,  # each connect and read; the whole exchange is checked below
                    # Never: an API destination does not follow a redirect, and following one would
                    # hand the header secret to whatever origin the Location names.
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                status, reason = None, type(error).__name__
            else:
                answer.close()
                if time.monotonic() - started > self.timeout:
                    # Answered, but after the deadline: EventBridge had already timed the request out.
                    status, reason = None, f"Timeout (HTTP {answer.status_code} after {self.timeout:g} s)"
                else:
                    status, reason = answer.status_code, f"HTTP {answer.status_code}"
                    if 200 <= status < 300:
                        self.delivered += 1
                        return
            if not retried(status):
                break
        self._dead_letter(body, attempt, status, reason)

    def _dead_letter(self, body: str, attempts: int, status: int | None, reason: str) -> None:
        event = _parse(body)
        detail = event.get("detail")
        change_id = detail.get("change_id") if isinstance(detail, dict) else None
        letter = DeadLetter(
            event_id=str(event.get("id", "")),
            detail_type=str(event.get("detail-type", "")),
            change_id=change_id,
            attempts=attempts,
            last_status=status,
            reason=reason,
        )
        self.dead_letters.append(letter)
        logger.warning(
            "forward gave up: event %s (%s, change %s) after %d attempts, last answer %s",
            letter.event_id,
            letter.detail_type,
            letter.change_id,
            attempts,
            reason,
        )


def _parse(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class LoopbackEndpoint(StartStop):
    """A flow URL on loopback that records every request it answers.

    ``answers`` are the statuses of the next requests, in order (then 200). With
    ``required_header`` it answers 401 to a request without that header and value, as a flow
    URL guarded by a token does; the value is compared, never kept or shown. ``location`` is
    the ``Location`` header of its 3xx answers (a flow URL that moved). ``delays`` are the
    seconds the next requests wait for their answer, in order (then none); with ``trickle`` the
    status and headers go at once and the body trickles over the wait.
    """

    answers: list[int] = field(default_factory=list)
    required_header: tuple[str, str] | None = None
    location: str | None = None
    delays: list[float] = field(default_factory=list)
    trickle: bool = False
    received: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None

    def start(self) -> Self:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = serve(self._wsgi, "forward-endpoint")
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_serving(self._server)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return f"http://127.0.0.1:{self._server.server_port}/flows/calendly"

    def fail_next(self, statuses: Iterable[int]) -> None:
        with self._lock:
            self.answers.extend(statuses)

    def delay_next(self, seconds: Iterable[float]) -> None:
        with self._lock:
            self.delays.extend(seconds)

    def accepted(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            status = self.answers.pop(0) if self.answers else 200
            delay = self.delays.pop(0) if self.delays else 0.0
            if self.required_header is not None:
                name, expected = self.required_header
                if not hmac.compare_digest(headers.get(name.lower(), "").encode(), expected.encode()):
                    status = 401
                if name.lower() in headers:
                    # What the endpoint keeps of the token is whether it was right, not its value.
                    headers[name.lower()] = "***"
            self.received.append(
                ReceivedRequest(
                    request.method, request.path, headers, _parse(request.get_data(as_text=True)), status
                )
            )
        headers_out = {"Location": self.location} if self.location and 300 <= status < 400 else {}
        if delay and self.trickle:
            return Response(_trickled(delay), status, headers_out, content_type="application/json")(
                environ, start_response
            )
        time.sleep(delay)
        return Response("{}", status, headers_out, content_type="application/json")(environ, start_response)


def _trickled(delay: float, step: float = 0.05) -> Iterator[bytes]:
    """A body whose first byte goes at once and whose last ``delay`` seconds later, a byte each ``step``.

    No pause is long, so only a deadline on the whole exchange, not one on each read, sees it late.
    """
    yield b"{"
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        time.sleep(step)
        yield b" "
    yield b"}"
