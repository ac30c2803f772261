"""Powertools Logger, Metrics and Tracer, built once per process and shared by every module."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

# Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
# POWERTOOLS_METRICS_NAMESPACE (template Globals), so nothing is hard-coded here.
logger = Logger()
metrics = Metrics()
tracer = Tracer()
