"""The whole stack on one machine: moto's server as AWS, an HTTP front for the template's API
routes, the table stream feeding the projector and the publisher, the event bus with the
template's rules, all wired from ``template.yaml``.

    with LocalStackRunner(forward_url=...) as stack:
        stack.webhook_url          # what Calendly (or the sandbox) posts to
        stack.table                # CalendlyTable over moto's server
        stack.project()            # apply and publish what the stream holds now (a pump also runs)
        stack.subscribe("crm", {"source": ["calendly-sync"]})   # a consumer's rule and queue
        stack.forward()            # POST what ForwardRule matched to forward_url (also in the pump)

Handlers run one at a time, as in a single Lambda container, and their stdout (JSON logs,
EMF metrics) goes to a log file rather than the terminal.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.wrappers import Request, Response

from local import stack
from local.forwarder import LOCAL_MAX_RETRIES, LocalForwarder
from local.loopback import StartStop, serve, stop_serving

if TYPE_CHECKING:
    from local.stream_pump import StreamPump

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


class LocalStackRunner(StartStop):
    def __init__(
        self,
        *,
        log_path: Path,
        calendly_url: str | None = None,
        webhooks: bool = True,
        environment: dict[str, str] | None = None,
        pump_interval_seconds: float = 0.2,
        stack_name: str | None = None,
        forward_url: str | None = None,
    ) -> None:
        self._log_path = log_path
        # ForwardUrl: the events ForwardRule matches are POSTed here (empty or None: no forwarding).
        self._forward_url = forward_url or ""
        self._calendly_url = calendly_url
        self._webhooks = webhooks
        self._environment = environment or {}
        self._pump_interval = pump_interval_seconds
        # moto keeps one state per process, so every runner gets names of its own.
        self._name = stack_name or f"calendly-local-{uuid.uuid4().hex[:8]}"
        self._invoke_lock = threading.Lock()
        self._stop = threading.Event()
        self._pumping: threading.Thread | None = None
        self.responses: Counter[int] = Counter()
        self.statuses: Counter[str] = Counter()
        self.event_bus_name = ""
        self.event_bus_arn = ""
        self.forwarder: LocalForwarder | None = None
        self._publisher: StreamPump | None = None

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
            "AWS::StackName": self._name,
            "ForwardUrl": self._forward_url,
            "CalendlyTable": self.table_name,
            "WebhookSigningKeySecret": self.signing_key_secret_arn,
            "CalendlyTokenSecret": self.token_secret_arn,
            "WebhookApi": "local",
        }
        local_stack = stack.LocalStack(refs)
        self.events = boto3.client("events")
        self.sqs = boto3.client("sqs")
        self._create_event_bus(local_stack)
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
        streams = boto3.client("dynamodbstreams")
        self._pump = StreamPump(streams, stream_arn, "ProjectDeliveriesFunction")
        if "PublishChangesFunction" in stack.function_ids() and self.event_bus_name:
            # The publisher retries a failed record until it succeeds (MaximumRetryAttempts -1).
            self._publisher = StreamPump(
                streams, stream_arn, "PublishChangesFunction", resume_at_failure=True
            )
        self._start_forwarding(local_stack)

        self._front = serve(self._wsgi, "http-front")
        self.api_url = f"http://127.0.0.1:{self._front.server_port}"
        # The stack's own URL is the front's here, as it is the API's in AWS. Without webhooks
        # (a real Calendly cannot reach loopback) nothing subscribes.
        if self._webhooks:
            os.environ["WEBHOOK_URL"] = self.webhook_url
        else:
            os.environ.pop("WEBHOOK_URL", None)
        _forget_process_state()
        self._pumping = threading.Thread(target=self._pump_forever, name="stream-pump", daemon=True)
        self._pumping.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # The pump's tick in flight finishes before moto and the log it writes to go away.
        if self._pumping is not None:
            self._pumping.join(timeout=30)
        stop_serving(self._front)
        with self._invoke_lock:
            self._moto.stop()
        sys.stdout = self._terminal
        self._log.close()
        os.environ.clear()
        os.environ.update(self._saved_environment)
        _forget_process_state()

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
        """Apply, then publish, every stream record written so far (the background pump does this too).

        Returns how many records the functions were handed: 0 once everything is applied and published.
        """
        handed: int = self._invoke(self._pump.drain)
        if self._publisher is not None:
            handed += self._invoke(self._publisher.drain)
        return handed

    def forward(self) -> int:
        """POST every event ForwardRule has matched so far to the forward URL; returns how many settled."""
        return self.forwarder.forward_pending() if self.forwarder is not None else 0

    def subscribe(self, name: str, pattern: dict[str, Any]) -> EventConsumer:
        """What a consumer does: a rule on the bus with ``pattern``, feeding a queue of its own."""
        if not self.event_bus_name:
            raise RuntimeError("template.yaml has no CalendlyEventBus")
        queue_url, queue_arn = self._queue(f"{self._name}-{name}")
        rule = f"{self._name}-{name}"
        self.events.put_rule(Name=rule, EventBusName=self.event_bus_name, EventPattern=json.dumps(pattern))
        self.events.put_targets(
            Rule=rule, EventBusName=self.event_bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        return EventConsumer(self.sqs, queue_url, rule)

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

    @property
    def publish_failures(self) -> list[str]:
        """Stream records the publisher reported failed (each is handed again until it succeeds)."""
        return list(self._publisher.failures) if self._publisher is not None else []

    @property
    def publishing(self) -> bool:
        return self._publisher is not None

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
                self.forward()
            except Exception as error:  # keep pumping; the next tick retries, as Lambda would
                self._log.write(f"stream pump: {type(error).__name__}: {error}\n")

    def _queue(self, name: str) -> tuple[str, str]:
        url: str = self.sqs.create_queue(QueueName=name[:80])["QueueUrl"]
        arn: str = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def _create_event_bus(self, local_stack: stack.LocalStack) -> None:
        """The bus and its archive, when the template has them and makes its own bus."""
        resources = stack.load_template()["Resources"]
        if "CalendlyEventBus" not in resources or not local_stack.condition("CreateEventBus"):
            return
        self.event_bus_name, self.event_bus_arn = stack.create_event_bus(self.events, local_stack)
        local_stack.refs["CalendlyEventBus"] = self.event_bus_name
        for logical_id, spec in resources.items():
            if spec.get("Type") == "AWS::Events::Archive":
                stack.create_archive(
                    self.events,
                    logical_id,
                    f"{self._name}-{logical_id}"[:48],
                    self.event_bus_arn,
                    local_stack,
                )

    def _start_forwarding(self, local_stack: stack.LocalStack) -> None:
        """ForwardRule on the bus, its API destination played by a queue and ``LocalForwarder``."""
        resources = stack.load_template()["Resources"]
        if not (self._forward_url and self.event_bus_name and "ForwardRule" in resources):
            return
        if not local_stack.condition(resources["ForwardRule"].get("Condition", "Forwarding")):
            return
        rule = stack.create_event_rule(self.events, "ForwardRule", local_stack)
        queue_url, queue_arn = self._queue(f"{rule}-target")
        self.events.put_targets(
            Rule=rule, EventBusName=self.event_bus_name, Targets=[{"Id": "api-destination", "Arn": queue_arn}]
        )
        retry_policy = stack.rule_target("ForwardRule", local_stack).get("RetryPolicy", {})
        retries = int(local_stack.resolve(retry_policy.get("MaximumRetryAttempts", LOCAL_MAX_RETRIES)))
        self._forward_header = (
            local_stack.resolve({"Ref": "ForwardHeaderName"}),
            self._forward_secret(local_stack),
        )
        self.forwarder = LocalForwarder(
            self.sqs,
            queue_url,
            self._forward_url,
            *self._forward_header,
            max_retries=min(retries, LOCAL_MAX_RETRIES),
        )

    def _forward_secret(self, local_stack: stack.LocalStack) -> str:
        """The header's value: a generated secret, as the template's ForwardHeaderSecret is."""
        if "ForwardHeaderSecret" not in stack.load_template()["Resources"]:
            return secrets.token_urlsafe(32)
        arn = stack.create_secret(
            self.secretsmanager, "ForwardHeaderSecret", f"{self._name}/ForwardHeaderSecret"
        )
        local_stack.refs["ForwardHeaderSecret"] = arn
        text: str = self.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict) and len(value) == 1:
            return str(next(iter(value.values())))
        return text

    def forward_header(self) -> tuple[str, str]:
        """``(header name, secret value)`` the forwarder sends: for a local endpoint to check, not to show."""
        if self.forwarder is None:
            raise RuntimeError("forwarding is off: start the runner with forward_url")
        return self._forward_header

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


@dataclass
class EventConsumer:
    """A consumer's queue behind its rule on the bus: ``receive`` takes what has arrived."""

    sqs: Any
    queue_url: str
    rule: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def receive(self) -> list[dict[str, Any]]:
        """Every event on the queue now (removed from it); also kept in ``received``."""
        new: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                self.received.extend(new)
                return new
            for message in messages:
                new.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


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
