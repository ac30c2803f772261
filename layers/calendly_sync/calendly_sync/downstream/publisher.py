"""Publish one stream batch's changes on the bus, each once from our side.

In stream order: classify every record (``changes``); leave out the change ids the ledger
already holds (``PUBLISHED#<change id>``); PutEvents in chunks; record in the ledger the ids
that were accepted, chunk by chunk. When an entry fails, the batch stops there and reports
the first record with a failed entry: Lambda hands the batch again from that record, and
whatever after it was accepted is in the ledger and left out then.

The one window left: the process dies between PutEvents accepting a chunk and the ledger
write that follows. That chunk is put again on the retry. EventBridge delivers to targets
at least once anyway, so consumers dedupe on ``change_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync.downstream.changes import DownstreamChange, record_changes
from calendly_sync.downstream.entries import Entry, chunks, entry_of
from calendly_sync.errors import PublishUnavailable
from calendly_sync.observability import logger, metrics


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """What the publisher reads of one table stream record."""

    sequence_number: str
    #: INSERT, MODIFY or REMOVE.
    event_name: str
    old_image: Mapping[str, Any] | None
    new_image: Mapping[str, Any] | None


class Ledger(Protocol):
    def already_published(self, change_ids: Sequence[str]) -> set[str]: ...

    def record_published(self, change_ids: Sequence[str]) -> None: ...


class Bus(Protocol):
    def put_events(self, entries: Sequence[Entry]) -> list[str | None]:
        """Per entry, in order: None if accepted, else EventBridge's error code."""
        ...


@dataclass(slots=True)
class PublishOutcome:
    #: Sequence number of the first record with an entry not accepted; None when all were.
    first_failed: str | None = None
    changes: int = 0
    published: int = 0
    already_published: int = 0
    truncated: int = 0
    failed: int = 0
    #: Changes whose event would pass 256 KiB even without Calendly's payload: never publishable.
    unpublishable: int = 0
    published_ids: list[str] = field(default_factory=list)


def publish_stream_batch(
    records: Iterable[StreamRecord],
    *,
    ledger: Ledger,
    bus: Bus,
    organization_of: Callable[[], str | None],
) -> PublishOutcome:
    """Publish the effective changes of ``records``; the outcome names the first record to retry.

    ``StorageUnavailable`` from the ledger's read propagates (nothing was put yet: the whole
    batch is retried); a failure of its write after a chunk was accepted propagates too, and
    that chunk is the documented window.
    """
    outcome = PublishOutcome()
    planned: list[tuple[StreamRecord, DownstreamChange]] = []
    seen: set[str] = set()
    for record in records:
        for change in record_changes(record.event_name, record.old_image, record.new_image):
            if change.change_id not in seen:  # one record can repeat another's change in a batch
                seen.add(change.change_id)
                planned.append((record, change))
    outcome.changes = len(planned)
    if planned:
        done = ledger.already_published([change.change_id for _, change in planned])
        outcome.already_published = sum(1 for _, change in planned if change.change_id in done)
        planned = [(record, change) for record, change in planned if change.change_id not in done]
    if planned:
        _publish(planned, ledger, bus, organization_of(), outcome)
    _observe(outcome)
    return outcome


def _publish(
    planned: list[tuple[StreamRecord, DownstreamChange]],
    ledger: Ledger,
    bus: Bus,
    organization: str | None,
    outcome: PublishOutcome,
) -> None:
    record_of: dict[str, StreamRecord] = {}
    entries: list[Entry] = []
    for record, change in planned:
        entry = entry_of(change, organization)
        if entry is None:
            outcome.unpublishable += 1
            logger.error(
                "event over EventBridge's limit even without Calendly's payload, not published",
                detail_type=change.detail_type,
                change_id=change.change_id,
                subject=change.subject,
            )
            continue
        record_of[entry.change_id] = record
        entries.append(entry)
    for chunk in chunks(entries):
        try:
            results = bus.put_events(chunk)
        except PublishUnavailable as error:
            logger.warning("PutEvents failed", reason=error.reason, entries=len(chunk))
            results = [error.reason] * len(chunk)
        accepted = [entry for entry, error in zip(chunk, results, strict=True) if error is None]
        if accepted:
            ledger.record_published([entry.change_id for entry in accepted])
            outcome.published += len(accepted)
            outcome.truncated += sum(1 for entry in accepted if entry.truncated)
            outcome.published_ids.extend(entry.change_id for entry in accepted)
        failed = [(entry, error) for entry, error in zip(chunk, results, strict=True) if error is not None]
        if failed:
            outcome.failed = len(failed)
            first = record_of[failed[0][0].change_id]
            outcome.first_failed = first.sequence_number
            logger.warning(
                "entries not accepted; the batch resumes at the first failed record",
                failed=len(failed),
                errors=sorted({str(error) for _, error in failed}),
                sequence_number=first.sequence_number,
            )
            # Later chunks would be put again from that record anyway; stopping keeps order.
            return


def _observe(outcome: PublishOutcome) -> None:
    for name, value in (
        ("EventsPublished", outcome.published),
        ("EventsTruncated", outcome.truncated),
        ("ChangesAlreadyPublished", outcome.already_published),
        ("EventsPublishFailed", outcome.failed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if outcome.unpublishable:
        metrics.add_metric(name="EventsUnpublishable", unit=MetricUnit.Count, value=outcome.unpublishable)
    logger.info(
        "stream batch published",
        changes=outcome.changes,
        published=outcome.published,
        already_published=outcome.already_published,
        truncated=outcome.truncated,
        failed=outcome.failed,
        first_failed=outcome.first_failed,
    )
