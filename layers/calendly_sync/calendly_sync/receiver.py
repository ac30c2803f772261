"""The webhook receiver's one domain call: check a delivery, then store it exactly once.

Where a delivery enters: ``functions/receive_webhook/app.py``; where it is checked:
``accept_delivery`` below with ``signature``; where it is written: ``adapters.dynamodb``
(``record_delivery`` here, ``apply_changes`` from ``projector``).

Order matters and is cheap first: size, signature over the raw bytes, envelope, then one
conditional PutItem of the delivery's audit record. Nothing else runs on this path: the
resources the delivery carries are applied by ``projector`` from the table's stream.

The handler builds ``ReceiverDependencies`` (settings, table, signing keys, clock) once per
container; nothing here reads the environment or makes an adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import signature
from calendly_sync.deliveries import KNOWN_EVENTS, plan_delivery
from calendly_sync.envelope import decode_body, parse_envelope
from calendly_sync.errors import CalendlySyncError, PayloadTooLarge, SignatureRejected
from calendly_sync.observability import logger, metrics

if TYPE_CHECKING:
    from calendly_sync.settings import Settings
    from calendly_sync.table_items import DeliveryItem


class DeliveryStore(Protocol):
    """``adapters.dynamodb.CalendlyTable``: one conditional write, False for a repeat."""

    def record_delivery(self, delivery: DeliveryItem) -> bool: ...


class SigningKeys(Protocol):
    """``adapters.secrets.SigningKeySecret``: the keys to accept, cached, and re-read now and then."""

    def signing_keys(self) -> tuple[str, ...]: ...

    def refreshed_signing_keys(self) -> tuple[str, ...] | None: ...


@dataclass(frozen=True, slots=True)
class ReceiverDependencies:
    settings: Settings
    table: DeliveryStore
    keys: SigningKeys
    #: Unix seconds now: a signature's age is judged against it.
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    status: str  # "stored" or "duplicate"
    event: str
    dedupe_key: str

    def as_response(self) -> dict[str, str]:
        return {"status": self.status, "event": self.event, "delivery": self.dedupe_key}


def accept_delivery(
    raw_body: bytes, signature_header: str | None, deps: ReceiverDependencies
) -> DeliveryReceipt:
    """Verify and store one delivery; raises a ``DeliveryRejected`` for what must be refused."""
    settings = deps.settings
    now = deps.clock()
    if len(raw_body) > settings.max_webhook_body_bytes:
        raise PayloadTooLarge(f"body is larger than {settings.max_webhook_body_bytes} bytes")
    _verify(signature_header, raw_body, now, deps)
    body_text = decode_body(raw_body)
    envelope = parse_envelope(body_text)

    plan = plan_delivery(
        envelope,
        body_text,
        received_at=datetime.fromtimestamp(now, UTC),
        retention_days=settings.delivery_retention_days,
    )
    stored = deps.table.record_delivery(plan.delivery)

    # Unknown event names are stored, but must not grow the metric's dimensions without bound.
    metrics.add_dimension(name="Event", value=plan.event if plan.event in KNOWN_EVENTS else "other")
    metrics.add_metric(name="Deliveries", unit=MetricUnit.Count, value=1)
    if not stored:
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
    logger.info(
        "delivery stored" if stored else "duplicate delivery",
        event_name=plan.event,
        delivery=plan.dedupe_key,
    )
    return DeliveryReceipt(
        status="stored" if stored else "duplicate", event=plan.event, dedupe_key=plan.dedupe_key
    )


def _verify(header: str | None, raw_body: bytes, now: float, deps: ReceiverDependencies) -> None:
    settings = deps.settings

    def check(keys: tuple[str, ...]) -> None:
        signature.verify(
            header,
            raw_body,
            keys,
            now=now,
            tolerance_seconds=settings.signature_tolerance_seconds,
            future_skew_seconds=settings.signature_future_skew_seconds,
        )

    try:
        check(deps.keys.signing_keys())
    except SignatureRejected as rejected:
        if rejected.reason != "mismatch":
            raise
        # The key may have been rotated since it was cached: read it again, once in a while.
        try:
            fresh = deps.keys.refreshed_signing_keys()
        except CalendlySyncError as unreadable:
            # The cached keys said no; a Secrets Manager outage must not turn that into a 5xx.
            logger.warning("signing keys could not be re-read", reason=unreadable.reason)
            raise rejected from None
        if fresh is None:
            raise
        check(fresh)
