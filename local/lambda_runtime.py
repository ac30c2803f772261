"""Just enough of Lambda and API Gateway to run the real handlers on one machine.

Used by the tests, the demo, the local HTTP front and the benchmarks: handlers are loaded
from the paths ``template.yaml`` gives and invoked with genuine-looking events.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calendly_sync.signature import SIGNATURE_HEADER, sign
from local.stack import handler_path

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and our handlers read from a Lambda context."""

    function_name: str = "local-function"
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


_loaded: dict[str, Handler] = {}


def load_handler(logical_id: str) -> Handler:
    """Import a function's handler from its ``CodeUri`` (each function's module is ``app``)."""
    if logical_id not in _loaded:
        path, attribute = handler_path(logical_id)
        module_name = f"_handler_{logical_id}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        _loaded[logical_id] = getattr(module, attribute)
    return _loaded[logical_id]


def http_api_event(
    method: str,
    path: str,
    body: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as the Lambda integration sends it."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    event_body: str | None
    if raw is None:
        event_body = None
    elif base64_encoded:
        event_body = base64.b64encode(raw).decode("ascii")
    else:
        event_body = raw.decode("utf-8")
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        # HTTP APIs lower-case header names.
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": (headers or {}).get("User-Agent", "local"),
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": event_body,
        "isBase64Encoded": base64_encoded,
    }


def rest_api_event(
    method: str,
    path: str,
    body: bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """The same request as payload format 1.0 (REST APIs): header case kept, multi-value maps."""
    event_body = None
    if body is not None:
        event_body = base64.b64encode(body).decode("ascii") if base64_encoded else body.decode("utf-8")
    given = dict(headers or {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": given,
        "multiValueHeaders": {name: [value] for name, value in given.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "httpMethod": method,
            "path": f"/prod{path}",
            "resourcePath": path,
            "requestId": str(uuid.uuid4()),
            "stage": "prod",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": event_body,
        "isBase64Encoded": base64_encoded,
    }


WEBHOOK_PATH = "/webhooks/calendly"


def signed_delivery_event(
    body: bytes | str | Mapping[str, Any],
    key: str,
    *,
    timestamp: int | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A webhook delivery as Calendly would send it through API Gateway, signed with ``key``."""
    if isinstance(body, Mapping):
        body = json.dumps(body, separators=(",", ":"))
    raw = body.encode("utf-8") if isinstance(body, str) else body
    header = sign(raw, key, int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: header, "User-Agent": "Calendly"}
    return http_api_event("POST", WEBHOOK_PATH, raw, headers, base64_encoded=base64_encoded)


def resign_event(event: Mapping[str, Any], key: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """A copy of a stored API Gateway event with its body signed afresh (samples go stale)."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    fresh = json.loads(json.dumps(event))
    header = sign(raw, key, int(time.time()) if timestamp is None else timestamp)
    fresh["headers"] = {**fresh.get("headers", {}), SIGNATURE_HEADER.lower(): header}
    return fresh
