"""Apply a stored delivery's resources to the table: the second half of webhook ingestion.

Runs from the table's stream, for each new delivery record, so the webhook answers
Calendly after a single write and this work is retried by Lambda (then parked in a queue)
if DynamoDB fails. Every write here is idempotent and newer-wins, so stream retries and
any arrival order leave the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import table_items
from calendly_sync.adapters.dynamodb import ChangeOutcome
from calendly_sync.deliveries import KNOWN_EVENTS, resource_changes
from calendly_sync.envelope import parse_envelope
from calendly_sync.observability import logger, metrics
from calendly_sync.table_items import Change, Origin


class ChangeWriter(Protocol):
    """``adapters.dynamodb.CalendlyTable``: idempotent, newer-wins writes."""

    def apply_changes(self, changes: Sequence[Change], *, origin: Origin) -> ChangeOutcome: ...


@dataclass(frozen=True, slots=True)
class Projection:
    event: str
    applied: int
    stale: int
    #: A known event whose payload did not have the shape we read: kept raw, nothing applied.
    unrecognized: bool


def project_delivery(body_text: str, table: ChangeWriter, *, dedupe_key: str | None = None) -> Projection:
    """Apply the resources in one stored delivery body (``NotAnEnvelope`` if it is not one)."""
    envelope = parse_envelope(body_text)
    changes = resource_changes(envelope)
    outcome = table.apply_changes(changes, origin=table_items.WEBHOOK)
    projection = Projection(
        event=envelope.event,
        applied=len(outcome.applied),
        stale=len(outcome.stale),
        unrecognized=envelope.event in KNOWN_EVENTS and not changes,
    )
    metrics.add_metric(name="ResourcesWritten", unit=MetricUnit.Count, value=projection.applied)
    if projection.stale:
        metrics.add_metric(name="StaleUpdates", unit=MetricUnit.Count, value=projection.stale)
    if projection.unrecognized:
        metrics.add_metric(name="UnrecognizedPayloads", unit=MetricUnit.Count, value=1)
        logger.warning("known event with an unexpected payload, kept raw", event_name=envelope.event)
    logger.info(
        "delivery applied",
        event_name=envelope.event,
        delivery=dedupe_key,
        applied=[f"{change.key.pk}/{change.key.sk}" for change in outcome.applied],
        stale=[f"{change.key.pk}/{change.key.sk}" for change in outcome.stale],
    )
    return projection
