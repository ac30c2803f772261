"""Benchmarks that print figures (never pass/fail): ``make bench``, ``make bench-poll``, ``make soak``.

Importing this package prepares the process the way every benchmark needs it, before any
of them imports boto3 or the layer: fake credentials (moto stands in for AWS), no tracing,
quiet logs, and the layer on the import path.
"""

import os
import sys
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
