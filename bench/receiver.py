"""Figures for ReceiveWebhookFunction: AWS calls, cold import, throughput, deployed size.

    make bench                       # all four figures
    make bench BENCH_ARGS="--deliveries 2000 --skip-build"

1. AWS requests per new delivery and per duplicate, warm (targets: 1 DynamoDB, 0 Secrets
   Manager; at most 2), counted at botocore's ``before-send`` (so retries would count too).
2. Cold import of the handler module as a ratio to a bare ``import boto3`` (target <= 1.5x),
   medians of fresh interpreter processes; beside it, what loading the X-Ray SDK would add.
3. Deliveries per second in-process against moto, next to a minimal reference handler
   (stdlib HMAC + one ``put_item``) run in the same process (target: within 1.5x).
4. Unzipped size of what ``sam build`` produces (target: under 20 MB).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import REPO, command_line, machine

KEY = "bench-signing-key"


import boto3  # noqa: E402
from botocore import handlers  # noqa: E402
from moto import mock_aws  # noqa: E402

from local import stack  # noqa: E402
from local.lambda_runtime import FakeLambdaContext, load_handler, signed_delivery_event  # noqa: E402
from local.samples import Booking  # noqa: E402

requests_sent: Counter[str] = Counter()


def _count_request(event_name: str, **_: Any) -> None:
    # event_name is "before-send.<service>.<Operation>"
    requests_sent[event_name.split(".", 2)[1]] += 1


# Every client made from here on reports each HTTP request it sends, retries included.
handlers.BUILTIN_HANDLERS.append(("before-send", _count_request))


def _deliveries(count: int) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    return [Booking(start=start + timedelta(minutes=30 * i)).book() for i in range(count)]


def _set_up_stack() -> tuple[str, Any]:
    dynamodb = boto3.client("dynamodb")
    secretsmanager = boto3.client("secretsmanager")
    stack.create_table(dynamodb, "bench-table")
    arn = stack.create_secret(secretsmanager, "WebhookSigningKeySecret", "bench/signing-keys")
    secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": KEY}))
    refs = {**stack.parameter_defaults(), "CalendlyTable": "bench-table", "WebhookSigningKeySecret": arn}
    os.environ.update(stack.function_environment("ReceiveWebhookFunction", stack.LocalStack(refs)))
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    return "bench-table", dynamodb


def measure_calls() -> dict[str, Counter[str]]:
    with mock_aws():
        _set_up_stack()
        handler = load_handler("ReceiveWebhookFunction")
        context = FakeLambdaContext(function_name="ReceiveWebhookFunction")
        first, second = _deliveries(2)
        with contextlib.redirect_stdout(io.StringIO()):
            handler(signed_delivery_event(first, KEY), context)  # cold: reads the signing keys once
        figures: dict[str, Counter[str]] = {}
        for label, envelope in (("new delivery", second), ("duplicate", second)):
            requests_sent.clear()
            with contextlib.redirect_stdout(io.StringIO()):
                status = handler(signed_delivery_event(envelope, KEY), context)["statusCode"]
            assert status == 200, status
            figures[label] = Counter(requests_sent)
        return figures


def _median_import_seconds(statement: str, environment: dict[str, str], runs: int) -> float:
    code = (
        "import sys, time\n"
        f"sys.path[:0] = {[str(REPO), str(REPO / 'layers' / 'calendly_sync')]!r}\n"
        "t = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - t)\n"
    )
    samples = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
        ).stdout
        samples.append(float(output.strip().splitlines()[-1]))
    return statistics.median(samples)


def measure_cold_import(runs: int) -> dict[str, float]:
    handler_file = REPO / "functions" / "receive_webhook" / "app.py"
    load = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(handler_file)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)"
    )
    environment = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "ReceiveWebhookFunction"}
    with_xray = f"{load}\nimport aws_xray_sdk.core"
    return {
        "import boto3": _median_import_seconds("import boto3", environment, runs),
        "handler": _median_import_seconds(load, environment, runs),
        # What the Powertools Tracer would add: building it loads the X-Ray SDK and its recorder.
        "handler + X-Ray SDK": _median_import_seconds(with_xray, environment, runs),
    }


def _reference_handler(table: str, client: Any) -> Callable[[dict[str, Any]], int]:
    """The least a receiver can do: check the HMAC and put the body, nothing else."""

    def handle(event: dict[str, Any]) -> int:
        body = event["body"].encode()
        header = dict(
            part.split("=", 1) for part in event["headers"]["calendly-webhook-signature"].split(",")
        )
        expected = hmac.new(KEY.encode(), header["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, header["v1"]):
            return 401
        envelope = json.loads(body)
        client.put_item(
            TableName=table,
            Item={
                "pk": {"S": envelope["event"] + envelope["payload"]["uri"]},
                "sk": {"S": "D"},
                "body": {"S": event["body"]},
            },
        )
        return 200

    return handle


def measure_throughput(count: int) -> dict[str, float]:
    with mock_aws():
        table, dynamodb = _set_up_stack()
        handler = load_handler("ReceiveWebhookFunction")
        context = FakeLambdaContext(function_name="ReceiveWebhookFunction")
        reference = _reference_handler(table, dynamodb)
        # Sign before timing: Calendly does that part.
        ours_events = [signed_delivery_event(e, KEY) for e in _deliveries(count)]
        reference_events = [signed_delivery_event(e, KEY) for e in _deliveries(count)]
        with contextlib.redirect_stdout(io.StringIO()):
            handler(signed_delivery_event(_deliveries(1)[0], KEY), context)  # warm up both
        reference(signed_delivery_event(_deliveries(1)[0], KEY))

        # Log lines and metrics still get written, to memory: the figure is the handler, not the terminal.
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            for event in ours_events:
                assert handler(event, context)["statusCode"] == 200
            ours = time.perf_counter() - started
            started = time.perf_counter()
            for event in reference_events:
                assert reference(event) == 200
            minimal = time.perf_counter() - started
    return {"ours": count / ours, "reference": count / minimal}


def measure_build_size() -> dict[str, int]:
    with tempfile.TemporaryDirectory() as build_dir:
        environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        environment["SAM_CLI_TELEMETRY"] = "0"
        subprocess.run(
            [
                str(Path(sys.executable).parent / "sam"),
                "build",
                "--template",
                str(REPO / "template.yaml"),
                "--build-dir",
                build_dir,
            ],
            cwd=REPO,
            env=environment,
            check=True,
            capture_output=True,
        )
        sizes = {}
        for artifact in sorted(Path(build_dir).iterdir()):
            if artifact.is_dir():
                sizes[artifact.name] = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
        return sizes


def main() -> int:
    parser = command_line(
        __doc__,
        [
            ("--deliveries", 500, "deliveries per throughput run (default 500)"),
            ("--import-runs", 7, "fresh processes per import figure (default 7)"),
        ],
    )
    parser.add_argument("--skip-build", action="store_true", help="do not run sam build for the size figure")
    arguments = parser.parse_args()

    print("ReceiveWebhookFunction benchmark")
    print(f"{machine()}\n")

    print("1. AWS requests per delivery, warm (target: 1 DynamoDB, 0 Secrets Manager; at most 2)")
    for label, counts in measure_calls().items():
        dynamodb, secrets = counts.get("dynamodb", 0), counts.get("secrets-manager", 0)
        print(f"   {label:<13} DynamoDB {dynamodb}  Secrets Manager {secrets}  total {sum(counts.values())}")

    print(
        f"\n2. cold import, median of {arguments.import_runs} fresh processes (target: <= 1.5x import boto3)"
    )
    imports = measure_cold_import(arguments.import_runs)
    for label, seconds in imports.items():
        ratio = seconds / imports["import boto3"]
        print(f"   {label:<22} {seconds * 1000:7.1f} ms   {ratio:4.2f}x")

    print(
        f"\n3. throughput in-process against moto, {arguments.deliveries} new deliveries"
        " (target: within 1.5x)"
    )
    rates = measure_throughput(arguments.deliveries)
    print(f"   ReceiveWebhookFunction {rates['ours']:7.1f} deliveries/s")
    print(f"   reference handler      {rates['reference']:7.1f} deliveries/s (stdlib HMAC + one put_item)")
    print(f"   reference / ours       {rates['reference'] / rates['ours']:7.2f}x")

    if not arguments.skip_build:
        print("\n4. unzipped size of sam build output (target: under 20 MB)")
        sizes = measure_build_size()
        for name, size in sizes.items():
            print(f"   {name:<24} {size / 1e6:6.2f} MB")
        print(f"   {'total':<24} {sum(sizes.values()) / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
