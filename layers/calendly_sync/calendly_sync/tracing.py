"""The Powertools Tracer (X-Ray subsegments for AWS and Calendly calls), built once per process.

Imported by the functions that call out (projector, poller, subscriptions), not by the
webhook receiver, whose traces come from Lambda's active tracing alone.
"""

from __future__ import annotations

from aws_lambda_powertools import Tracer

tracer = Tracer()
