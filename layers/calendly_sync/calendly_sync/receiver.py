"""The webhook receiver's one domain call: check a delivery, then store it exactly once.

Where a delivery enters: ``functions/receive_webhook/app.py``; where it is checked:
``accept_delivery`` below with ``signature``; where it is written: ``adapters.dynamodb``
(``record_delivery`` here, ``apply_changes`` from ``projector``).

Order matters and is cheap first: size, signature over the raw bytes, envelope, then one
conditional PutItem of the delivery's audit record. Nothing else runs on this path: the
resources the delivery carries are applied by ``projector`` from the table's stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import signature
from calendly_sync.adapters import secrets
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.errors import CalendlySyncError, PayloadTooLarge, SignatureRejected
from calendly_sync.ingest import KNOWN_EVENTS, plan_delivery
from calendly_sync.models import decode_body, parse_envelope
from calendly_sync.observability import logger, metrics
from calendly_sync.settings import get_settings


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    status: str  # "stored" or "duplicate"
    event: str
    dedupe_key: str

    def as_response(self) -> dict[str, str]:
        return {"status": self.status, "event": self.event, "delivery": self.dedupe_key}


def accept_delivery(
    raw_body: bytes, signature_header: str | None, *, now: float | None = None
) -> DeliveryReceipt:
    """Verify and store one delivery; raises a ``DeliveryRejected`` for what must be refused."""
    settings = get_settings()
    now = time.time() if now is None else now
    if len(raw_body) > settings.max_webhook_body_bytes:
        raise PayloadTooLarge(f"body is larger than {settings.max_webhook_body_bytes} bytes")
    _verify(signature_header, raw_body, now)
    body_text = decode_body(raw_body)
    envelope = parse_envelope(body_text)

    plan = plan_delivery(
        envelope,
        body_text,
        received_at=datetime.fromtimestamp(now, UTC),
        retention_days=settings.delivery_retention_days,
    )
    stored = CalendlyTable(settings.table_name).record_delivery(plan.delivery)

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


def _verify(header: str | None, raw_body: bytes, now: float) -> None:
    settings = get_settings()

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
        check(secrets.signing_keys())
    except SignatureRejected as rejected:
        if rejected.reason != "mismatch":
            raise
        # The key may have been rotated since it was cached: read it again, once in a while.
        try:
            fresh = secrets.refreshed_signing_keys()
        except CalendlySyncError as unreadable:
            # The cached keys said no; a Secrets Manager outage must not turn that into a 5xx.
            logger.warning("signing keys could not be re-read", reason=unreadable.reason)
            raise rejected from None
        if fresh is None:
            raise
        check(fresh)
