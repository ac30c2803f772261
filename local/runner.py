"""The whole stack on one machine: moto's server as AWS, an HTTP front for the template's API
routes, and the table stream feeding the projector, all wired from ``template.yaml``.

    with LocalStackRunner() as stack:
        stack.webhook_url          # what Calendly (or the sandbox) posts to
        stack.table                # CalendlyTable over moto's server
        stack.project()            # apply what the stream holds now (a background pump also runs)

Handlers run one at a time, as in a single Lambda container, and their stdout (JSON logs,
EMF metrics) goes to a log file rather than the terminal.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from local import stack

REGION = "us-east-1"
_in_handler = threading.local()


class _RoutedStdout:
    """stdout that sends what handlers print to a log file and the rest to the terminal."""

    def __init__(self, terminal: IO[str], log: IO[str]) -> None:
        self._terminal, self._log = terminal, log

    def write(self, text: str) -> int:
        target = self._log if getattr(_in_handler, "active", False) else self._terminal
        return target.write(text)

    def flush(self) -> None:
        self._terminal.flush()
        self._log.flush()

    def isatty(self) -> bool:
        return self._terminal.isatty()


class LocalStackRunner:
    def __init__(
        self,
        *,
        log_path: Path,
        calendly_url: str | None = None,
        webhooks: bool = True,
        environment: dict[str, str] | None = None,
        pump_interval_seconds: float = 0.2,
        stack_name: str | None = None,
    ) -> None:
        self._log_path = log_path
        self._calendly_url = calendly_url
        self._webhooks = webhooks
        self._environment = environment or {}
        self._pump_interval = pump_interval_seconds
        # moto keeps one state per process, so every runner gets names of its own.
        self._name = stack_name or f"calendly-local-{uuid.uuid4().hex[:8]}"
        self._invoke_lock = threading.Lock()
        self._stop = threading.Event()
        self.responses: Counter[int] = Counter()
        self.statuses: Counter[str] = Counter()

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        self._saved_environment = dict(os.environ)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("w", encoding="utf-8")
        self._terminal = sys.stdout
        sys.stdout = _RoutedStdout(self._terminal, self._log)

        # The servers' per-request lines would drown the output; errors still show.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_endpoint = f"http://{host}:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self.dynamodb = boto3.client("dynamodb")
        self.secretsmanager = boto3.client("secretsmanager")
        self.table_name = f"{self._name}-CalendlyTable"
        stack.create_table(self.dynamodb, self.table_name)
        self.signing_key_secret_arn = stack.create_secret(
            self.secretsmanager, "WebhookSigningKeySecret", f"{self._name}/WebhookSigningKeySecret"
        )
        self.token_secret_arn = stack.create_secret(
            self.secretsmanager, "CalendlyTokenSecret", f"{self._name}/CalendlyTokenSecret"
        )
        refs = {
            **stack.parameter_defaults(),
            "CalendlyTable": self.table_name,
            "WebhookSigningKeySecret": self.signing_key_secret_arn,
            "CalendlyTokenSecret": self.token_secret_arn,
            "WebhookApi": "local",
        }
        local_stack = stack.LocalStack(refs)
        # One process plays every function, so their environments are merged (the same wiring).
        for logical_id in stack.function_ids():
            os.environ.update(stack.function_environment(logical_id, local_stack))
        os.environ["POWERTOOLS_SERVICE_NAME"] = "calendly-sync-local"
        if self._calendly_url:  # the sandbox, or a real Calendly
            os.environ["CALENDLY_API_BASE_URL"] = self._calendly_url
        os.environ.update(self._environment)

        from local.lambda_runtime import load_handler
        from local.stream_pump import StreamPump

        _forget_process_state()

        self._routes = {route: load_handler(logical_id) for route, logical_id in stack.http_routes().items()}
        stream_arn = self.dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        self._pump = StreamPump(boto3.client("dynamodbstreams"), stream_arn, "ProjectDeliveriesFunction")

        self._front: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        threading.Thread(target=self._front.serve_forever, name="http-front", daemon=True).start()
        self.api_url = f"http://127.0.0.1:{self._front.server_port}"
        # The stack's own URL is the front's here, as it is the API's in AWS. Without webhooks
        # (a real Calendly cannot reach loopback) nothing subscribes.
        if self._webhooks:
            os.environ["WEBHOOK_URL"] = self.webhook_url
        else:
            os.environ.pop("WEBHOOK_URL", None)
        _forget_process_state()
        threading.Thread(target=self._pump_forever, name="stream-pump", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._front.shutdown()
        with self._invoke_lock:
            self._moto.stop()
        sys.stdout = self._terminal
        self._log.close()
        os.environ.clear()
        os.environ.update(self._saved_environment)
        _forget_process_state()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # --- what callers use --------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"{self.api_url}/webhooks/calendly"

    @property
    def table(self) -> Any:
        from calendly_sync.adapters.dynamodb import CalendlyTable

        return CalendlyTable(self.table_name, self.dynamodb)

    def signing_key(self) -> str:
        value = json.loads(
            self.secretsmanager.get_secret_value(SecretId=self.signing_key_secret_arn)["SecretString"]
        )
        key: str = value["current"]
        return key

    def project(self) -> int:
        """Apply every stream record written so far (the background pump does this too)."""
        return self._invoke(self._pump.drain)

    def invoke_function(self, logical_id: str, payload: dict[str, Any]) -> Any:
        """``sam remote invoke``, locally: call a function's handler with ``payload``, one at a time."""
        from local.lambda_runtime import FakeLambdaContext, load_handler

        return self._invoke(load_handler(logical_id), payload, FakeLambdaContext(function_name=logical_id))

    def tick_schedules(self) -> dict[str, Any]:
        """Run every scheduled function once, as EventBridge Scheduler would; answers by function."""
        from local.lambda_runtime import FakeLambdaContext, load_handler

        answers: dict[str, Any] = {}
        for schedule in stack.schedules():
            handler = load_handler(schedule.function)
            answers[schedule.function] = self._invoke(
                handler, dict(schedule.payload), FakeLambdaContext(function_name=schedule.function)
            )
        return answers

    @property
    def projection_failures(self) -> list[str]:
        return list(self._pump.failures)

    # --- internals -----------------------------------------------------------------------

    def _invoke(self, call: Any, *args: Any) -> Any:
        with self._invoke_lock:
            _in_handler.active = True
            try:
                return call(*args)
            finally:
                _in_handler.active = False

    def _pump_forever(self) -> None:
        while not self._stop.wait(self._pump_interval):
            try:
                self.project()
            except Exception as error:  # keep pumping; the next tick retries, as Lambda would
                self._log.write(f"stream pump: {type(error).__name__}: {error}\n")

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            response = Response(json.dumps({"message": "Not Found"}), 404, content_type="application/json")
            return response(environ, start_response)
        event = _http_api_event(request)
        from local.lambda_runtime import FakeLambdaContext

        result = self._invoke(handler, event, FakeLambdaContext(function_name="ReceiveWebhookFunction"))
        status = int(result.get("statusCode", 500))
        self.responses[status] += 1
        try:
            self.statuses[json.loads(result.get("body") or "{}").get("status", str(status))] += 1
        except ValueError:
            self.statuses[str(status)] += 1
        body = (
            base64.b64decode(result["body"]) if result.get("isBase64Encoded") else (result.get("body") or "")
        )
        response = Response(body, status, headers=result.get("headers") or {})
        return response(environ, start_response)


def _forget_process_state() -> None:
    """Drop clients and settings cached for another endpoint (as a new Lambda container would)."""
    from calendly_sync.adapters.aws_clients import clear_client_caches
    from calendly_sync.adapters.secrets import clear_secret_caches
    from calendly_sync.settings import get_settings

    clear_client_caches()
    clear_secret_caches()
    get_settings.cache_clear()


def _http_api_event(request: Request) -> dict[str, Any]:
    """What API Gateway's HTTP API hands Lambda for this request (payload format 2.0)."""
    from local.lambda_runtime import http_api_event

    raw = request.get_data(cache=False)
    textual = (request.mimetype or "").startswith(("application/json", "text/"))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        textual = False
    headers = dict(request.headers.items())
    return http_api_event(request.method, request.path, raw, headers, base64_encoded=not textual)


def wait_until(condition: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
