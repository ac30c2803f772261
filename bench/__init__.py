"""Benchmarks that print figures (never pass/fail): ``make bench``, ``make bench-poll``,
``make bench-publish``, ``make soak``.

Importing this package prepares the process the way every benchmark needs it, before any
of them imports boto3 or the layer: fake credentials (moto stands in for AWS), no tracing,
quiet logs, and the layer on the import path.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "CalendlySync",
        "POWERTOOLS_SERVICE_NAME": "bench",
        # The benchmarks measure the handlers, not how fast a terminal prints JSON logs.
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
for _path in (str(REPO / "layers" / "calendly_sync"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def command_line(doc: str | None, options: Sequence[tuple[str, int | float, str]]) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the help, then ``(name, default, help)``
    options, each of its default's type."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default, text in options:
        parser.add_argument(name, type=type(default), default=default, help=text)
    return parser


def machine() -> str:
    """What the figures were measured on, the line under every benchmark's title."""
    return f"python {sys.version.split()[0]} on {os.uname().machine}, {os.cpu_count()} cores"
