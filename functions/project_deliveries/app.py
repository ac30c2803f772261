"""ProjectDeliveriesFunction: applies each newly stored webhook delivery to the table.

Triggered by CalendlyTable's stream (new delivery records only, filtered in the template).
A record that fails for a passing reason is reported back, so Lambda retries just that one
and parks it in the failure queue when retries run out.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.errors import DeliveryRejected
from calendly_sync.observability import logger, metrics
from calendly_sync.projector import project_delivery
from calendly_sync.settings import built_per_settings
from calendly_sync.tracing import tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

#: The table the projector writes to, built on the first record.
table = built_per_settings(lambda settings: CalendlyTable(settings.table_name))


def project_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else {}
    try:
        project_delivery(image["body"], table(), dedupe_key=delivery_id(image))
    except DeliveryRejected as error:
        # The receiver checked this body before storing it; retrying cannot fix it.
        metrics.add_metric(name="UnprojectableDeliveries", unit=MetricUnit.Count, value=1)
        logger.error("stored delivery cannot be applied", delivery=delivery_id(image), reason=error.reason)


def delivery_id(image: dict[str, Any]) -> str:
    return str(image.get("pk", "")).removeprefix("DELIVERY#")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=project_record, processor=processor, context=context
    )
