"""PublishChangesFunction: each effective change in the table, once, as an event on the bus.

Triggered by CalendlyTable's stream (resource items only, filtered in the template). The
first record with an event EventBridge did not accept is reported back: Lambda hands the
batch again from there, and the ledger leaves out what was already published. An event
EventBridge refuses for what it is goes to PublishFailureQueue at once instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.aws_clients import dynamodb_client, eventbridge_client, sqs_client
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.eventbridge import EventBridgeBus
from calendly_sync.adapters.published_ledger import PublishedLedger
from calendly_sync.adapters.sqs import SqsFailureQueue
from calendly_sync.downstream.publisher import StreamRecord, publish_stream_batch
from calendly_sync.errors import ConfigurationError
from calendly_sync.observability import logger, metrics
from calendly_sync.settings import Settings, built_per_settings
from calendly_sync.tracing import tracer


def stream_records(event: dict[str, Any]) -> list[StreamRecord]:
    records = []
    for record in DynamoDBStreamEvent(event).records:
        stream = record.dynamodb
        records.append(
            StreamRecord(
                sequence_number=(stream.sequence_number if stream else None) or "",
                event_name=record.event_name.name if record.event_name else "",
                old_image=(stream.old_image or None) if stream else None,
                new_image=(stream.new_image or None) if stream else None,
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class Publishing:
    """What the publisher works with: ledger, bus, failure queue, and where the organization is read."""

    ledger: PublishedLedger
    bus: EventBridgeBus
    table: CalendlyTable
    failure_queue: SqsFailureQueue | None

    def organization(self) -> str | None:
        return (self.table.sync_state("CONNECTION") or {}).get("organization")


def _publishing(settings: Settings) -> Publishing:
    if not settings.event_bus_name:
        raise ConfigurationError("EVENT_BUS_NAME is not set")
    return Publishing(
        ledger=PublishedLedger(settings.table_name, dynamodb_client()),
        bus=EventBridgeBus(settings.event_bus_name, eventbridge_client()),
        table=CalendlyTable(settings.table_name, dynamodb_client()),
        failure_queue=SqsFailureQueue(settings.publish_failure_queue_url, sqs_client())
        if settings.publish_failure_queue_url
        else None,
    )


#: Built on the first invocation, once per container (and again only for new settings).
publishing = built_per_settings(_publishing)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    wired = publishing()
    outcome = publish_stream_batch(
        stream_records(event),
        ledger=wired.ledger,
        bus=wired.bus,
        organization_of=wired.organization,
        failure_queue=wired.failure_queue,
    )
    failures = [] if outcome.first_failed is None else [{"itemIdentifier": outcome.first_failed}]
    return {"batchItemFailures": failures}
