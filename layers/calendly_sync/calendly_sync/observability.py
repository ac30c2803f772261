"""Powertools Logger and Metrics, built once per process and shared by every module.

The Tracer lives in ``tracing``: building it loads the X-Ray SDK (about 80 ms of cold
start, see the README's figures), which the webhook receiver's hot path does without.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

# Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
# POWERTOOLS_METRICS_NAMESPACE (template Globals), so nothing is hard-coded here.
logger = Logger()
metrics = Metrics()
