"""Fixtures for the Calendly sandbox's own tests: a running sandbox, tokens, a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from tests.sandbox.helpers import Api, WebhookReceiver

SEED_START = datetime(2030, 3, 1, tzinfo=UTC)
SIGNING_KEY = "test-signing-key"

# Retry timing compressed so a failing endpoint exhausts Calendly's 24 h window in under a second.
FAST_CONFIG = SandboxConfig(
    seed=1234,
    delivery_initial_backoff_seconds=0.05,
    delivery_backoff_factor=2.0,
    delivery_retry_window_seconds=0.6,
    delivery_timeout_seconds=2.0,
    delivery_connect_timeout_seconds=1.0,
)


@pytest.fixture
def sandbox() -> Iterator[CalendlySandbox]:
    with CalendlySandbox(FAST_CONFIG) as running:
        yield running


@pytest.fixture
def owner_token(sandbox: CalendlySandbox) -> str:
    return sandbox.add_token(TokenSpec(role="owner"))


@pytest.fixture
def api(sandbox: CalendlySandbox, owner_token: str) -> Api:
    return Api(sandbox.base_url, owner_token)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running
