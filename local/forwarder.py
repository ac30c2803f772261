"""Forwarding to a URL on one machine: what ``ForwardRule``'s API destination does in AWS.

moto runs EventBridge rules but sends nothing to an API destination's URL, so the local
runner gives ``ForwardRule`` an SQS queue as its target and ``LocalForwarder`` plays the API
destination: it POSTs each event, as EventBridge would (the whole event as JSON, the
connection's API-key header with its secret), retries what EventBridge retries, and keeps
what it gives up on in a dead-letter list, as the target's ``DeadLetterConfig`` would.

``LoopbackEndpoint`` is a flow URL on loopback (an integration platform's trigger, say) that
records what arrives; the demo and the tests point ``ForwardUrl`` at it.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import requests
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from local.loopback import StartStop, serve, stop_serving

logger = logging.getLogger(__name__)

#: EventBridge retries an API destination's 401, 407, 409, 429 and 5xx answers (and no answer
#: at all); any other status is final.
RETRIED_STATUSES = frozenset({401, 407, 409, 429})
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
        timeout: tuple[float, float] = (3.05, 10.0),
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
        self._timeout = timeout
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
            try:
                answer = self._session.post(
                    self.url,
                    data=body.encode("utf-8"),
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "User-Agent": USER_AGENT,
                        self.header_name: self.__secret,
                    },
                    timeout=self._timeout,
                )
            except requests.RequestException as error:
                status, reason = None, type(error).__name__
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
    URL guarded by a token does; the value is compared, never kept or shown.
    """

    answers: list[int] = field(default_factory=list)
    required_header: tuple[str, str] | None = None
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

    def accepted(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            status = self.answers.pop(0) if self.answers else 200
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
        return Response("{}", status, content_type="application/json")(environ, start_response)
