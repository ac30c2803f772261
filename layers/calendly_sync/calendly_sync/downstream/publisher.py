"""Publish one stream batch's changes on the bus, each once from our side.

In stream order: classify every record (``changes``); leave out the change ids the ledger
already holds (``PUBLISHED#<change id>``); PutEvents in chunks; record in the ledger the ids
that were accepted, chunk by chunk. When an entry fails, the batch stops there and reports
the first record with a failed entry: Lambda hands the batch again from that record, and
whatever after it was accepted is in the ledger and left out then.

An entry EventBridge refuses for what it is (``MALFORMED_ENTRY_CODES``), or one whose detail
cannot even be written as JSON, would be refused on every retry: it is set aside to the failure
queue at once (counted as ``EventsSetAside``), recorded in the ledger so it is never tried
again, and the rest of the batch goes on. Without a failure queue it fails like any other.

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
from calendly_sync.errors import FailureQueueUnavailable, PublishUnavailable
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


class FailureQueue(Protocol):
    def set_aside(self, message: Mapping[str, Any]) -> None:
        """Keep ``message`` for an operator; ``FailureQueueUnavailable`` if it could not be kept."""
        ...


#: The entry errors that blame the entry itself: the same entry is refused on every retry.
#: EventBridge API reference, PutEventsResultEntry.ErrorCode: "Retryable errors include:
#: InternalFailure, ThrottlingException"; the non-retryable ones include "InvalidArgument: A
#: specified parameter is not valid" and "MalformedDetail: The JSON provided is not valid".
#: The other non-retryable codes (AccessDeniedException, NotAuthorizedForSourceException,
#: NotAuthorizedForDetailTypeException, InvalidAccountIdException) blame the stack's wiring,
#: not one entry: an operator can fix them, so those records wait on the stream, alarmed.
MALFORMED_ENTRY_CODES = frozenset({"MalformedDetail", "InvalidArgument"})
#: The reason given for a detail that ``entries`` cannot write as JSON (never sent).
DETAIL_NOT_JSON = "DetailNotJson"


@dataclass(slots=True)
class PublishOutcome:
    #: Sequence number of the first record with an entry not accepted; None when all were.
    first_failed: str | None = None
    changes: int = 0
    published: int = 0
    already_published: int = 0
    truncated: int = 0
    failed: int = 0
    #: Changes whose entry would never be accepted, sent to the failure queue instead.
    set_aside: int = 0
    #: Changes whose event would pass 256 KiB even without Calendly's payload: never publishable.
    unpublishable: int = 0
    published_ids: list[str] = field(default_factory=list)


def publish_stream_batch(
    records: Iterable[StreamRecord],
    *,
    ledger: Ledger,
    bus: Bus,
    organization_of: Callable[[], str | None],
    failure_queue: FailureQueue | None = None,
) -> PublishOutcome:
    """Publish the effective changes of ``records``; the outcome names the first record to retry.

    ``StorageUnavailable`` from the ledger's read propagates (nothing was put yet: the whole
    batch is retried); a failure of its write after a chunk was accepted propagates too, and
    that chunk is the documented window (for a change set aside, the window is a second message).
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
        _publish(planned, ledger, bus, failure_queue, organization_of(), outcome)
    _observe(outcome)
    return outcome


def _publish(
    planned: list[tuple[StreamRecord, DownstreamChange]],
    ledger: Ledger,
    bus: Bus,
    failure_queue: FailureQueue | None,
    organization: str | None,
    outcome: PublishOutcome,
) -> None:
    planned_of: dict[str, tuple[StreamRecord, DownstreamChange]] = {}
    entries: list[Entry] = []
    #: The first record with a change that could be neither written as JSON nor set aside.
    held: StreamRecord | None = None
    held_change_id = ""
    for record, change in planned:
        try:
            entry = entry_of(change, organization)
        except ValueError:  # a value JSON cannot carry (NaN, Infinity): EventBridge would refuse it
            if _set_aside(record, change, DETAIL_NOT_JSON, failure_queue, ledger, outcome):
                continue
            held, held_change_id = record, change.change_id  # the batch resumes here; nothing after is put
            break
        if entry is None:
            outcome.unpublishable += 1
            logger.error(
                "event over EventBridge's limit even without Calendly's payload, not published",
                detail_type=change.detail_type,
                change_id=change.change_id,
                subject=change.subject,
            )
            continue
        planned_of[entry.change_id] = (record, change)
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
        failed: list[tuple[Entry, str]] = []
        for entry, code in zip(chunk, results, strict=True):
            if code is None:
                continue
            if code in MALFORMED_ENTRY_CODES and _set_aside(
                *planned_of[entry.change_id], code, failure_queue, ledger, outcome
            ):
                continue  # refused for what it is: set aside, the batch goes on
            failed.append((entry, code))
        if failed:
            outcome.failed = len(failed)
            first, _ = planned_of[failed[0][0].change_id]
            outcome.first_failed = first.sequence_number
            logger.warning(
                "entries not accepted; the batch resumes at the first failed record",
                failed=len(failed),
                errors=sorted({str(error) for _, error in failed}),
                sequence_number=first.sequence_number,
            )
            # Later chunks would be put again from that record anyway; stopping keeps order.
            return
    if held is not None:
        outcome.failed += 1
        outcome.first_failed = held.sequence_number
        logger.warning(
            "a change not writable as JSON, and no failure queue took it; the batch resumes there",
            change_id=held_change_id,
            sequence_number=held.sequence_number,
        )


def _set_aside(
    record: StreamRecord,
    change: DownstreamChange,
    reason: str,
    failure_queue: FailureQueue | None,
    ledger: Ledger,
    outcome: PublishOutcome,
) -> bool:
    """Send the change to the failure queue and record it as done; False if it could not be."""
    if failure_queue is None:
        return False
    image = record.new_image or {}
    try:
        failure_queue.set_aside(
            {
                "set_aside": reason,
                "change_id": change.change_id,
                "detail_type": change.detail_type,
                "subject": change.subject,
                "item": {"pk": image.get("pk"), "sk": image.get("sk")},
                "stream_sequence_number": record.sequence_number,
            }
        )
    except FailureQueueUnavailable as error:
        logger.warning(
            "could not set aside a change; it is retried", reason=error.reason, change_id=change.change_id
        )
        return False
    ledger.record_published([change.change_id])
    outcome.set_aside += 1
    logger.error(
        "a change EventBridge will never accept, set aside to the failure queue",
        reason=reason,
        detail_type=change.detail_type,
        change_id=change.change_id,
        subject=change.subject,
        sequence_number=record.sequence_number,
    )
    return True


def _observe(outcome: PublishOutcome) -> None:
    for name, value in (
        ("EventsPublished", outcome.published),
        ("EventsTruncated", outcome.truncated),
        ("ChangesAlreadyPublished", outcome.already_published),
        ("EventsPublishFailed", outcome.failed),
        ("EventsSetAside", outcome.set_aside),
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
        set_aside=outcome.set_aside,
        first_failed=outcome.first_failed,
    )
