"""Test helpers: a loopback webhook receiver, an API client and polling with a deadline."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def wait_until[T](probe: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def signature_is_valid(header: str | None, body: bytes, signing_key: str) -> bool:
    """Verify Calendly-Webhook-Signature independently of the sandbox's own signing code."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(signing_key.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class ReceivedDelivery:
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event(self) -> str:
        return str(self.envelope["event"])


class WebhookReceiver:
    """A real HTTP endpoint on 127.0.0.1 that records deliveries and answers with scripted statuses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedDelivery] = []
        self._statuses: list[int] = []
        self.default_status = 200
        self.gate: threading.Event | None = None  # when set, requests wait for it before answering
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def respond_with(self, statuses: Iterable[int], then: int = 200) -> None:
        """Answer the next requests with `statuses` in turn, then with `then`."""
        with self._lock:
            self._statuses = list(statuses)
            self.default_status = then

    @property
    def received(self) -> list[ReceivedDelivery]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedDelivery]:
        return wait_until(lambda: self.received if len(self.received) >= count else None, timeout)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        gate = self.gate
        with self._lock:
            self._received.append(ReceivedDelivery(dict(request.headers), body))
            status = self._statuses.pop(0) if self._statuses else self.default_status
        if gate is not None:
            gate.wait(timeout=10)
        return Response(b"", status=status)(environ, start_response)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()


class Api:
    """requests against the sandbox with a default bearer token."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()
        self.session.trust_env = False

    def _headers(self, token: str | None) -> dict[str, str]:
        chosen = self.token if token is None else token
        return {"Authorization": f"Bearer {chosen}"} if chosen else {}

    def get(self, path_or_url: str, token: str | None = None, **params: Any) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base_url + path_or_url
        return self.session.get(url, params=params or None, headers=self._headers(token), timeout=10)

    def post(self, path: str, body: Any, token: str | None = None) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, headers=self._headers(token), timeout=10)

    def delete(self, path_or_uri: str, token: str | None = None) -> requests.Response:
        path = "/" + path_or_uri.split("/", 3)[3] if path_or_uri.startswith("http") else path_or_uri
        return self.session.delete(self.base_url + path, headers=self._headers(token), timeout=10)

    def subscribe(
        self,
        url: str,
        organization: str,
        events: list[str] | None = None,
        scope: str = "organization",
        signing_key: str | None = "test-signing-key",
        token: str | None = None,
        **extra: Any,
    ) -> requests.Response:
        body: dict[str, Any] = {
            "url": url,
            "events": events or ["invitee.created", "invitee.canceled"],
            "organization": organization,
            "scope": scope,
            **extra,
        }
        if signing_key is not None:
            body["signing_key"] = signing_key
        return self.post("/webhook_subscriptions", body, token=token)


def path_of(uri: str) -> str:
    """/users/<uuid> from https://api.calendly.com/users/<uuid>."""
    return "/" + uri.split("/", 3)[3]
