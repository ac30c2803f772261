"""boto3 clients, made on first use (never at import) and then kept for the process.

Region and endpoint come from the standard AWS variables, so ``AWS_ENDPOINT_URL`` points
every client at the embedded moto server when the stack runs locally.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# The receiver must answer Calendly within 10 s, so every call fails fast: four attempts
# in all (botocore's standard mode, jittered back-off), each with short timeouts.
AWS_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "total_max_attempts": 4},
)


@cache
def _session() -> boto3.session.Session:
    # Our own session rather than boto3's default one: forgetting it forgets the credentials
    # it resolved, so the next client is made with whatever the environment holds then.
    return boto3.session.Session()


@cache
def dynamodb_client() -> Any:
    return _session().client("dynamodb", config=AWS_CLIENT_CONFIG)


@cache
def eventbridge_client() -> Any:
    return _session().client("events", config=AWS_CLIENT_CONFIG)


@cache
def sqs_client() -> Any:
    return _session().client("sqs", config=AWS_CLIENT_CONFIG)


def clear_client_caches() -> None:
    """Forget every client and the credentials they were made with.

    Tests switch AWS mocks, settings and identities between cases (the IAM tests run each
    function as its own role), as a new Lambda container would start with none of them.
    """
    dynamodb_client.cache_clear()
    eventbridge_client.cache_clear()
    sqs_client.cache_clear()
    _session.cache_clear()
