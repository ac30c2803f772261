"""The receiver's and the projector's domain calls with a fake table and fake signing keys.

No AWS, no sockets: what each signature verdict becomes (stored, duplicate, or a refusal
whose HTTP status ``errors.http_status_for`` gives), when the keys are read again, and what
the projector counts once a stored delivery's resources are applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from calendly_sync import table_items
from calendly_sync.adapters.dynamodb import ChangeOutcome
from calendly_sync.errors import (
    CalendlySyncError,
    NotAnEnvelope,
    PayloadTooLarge,
    SecretUnavailable,
    SignatureRejected,
    http_status_for,
)
from calendly_sync.observability import metrics
from calendly_sync.projector import project_delivery
from calendly_sync.receiver import ReceiverDependencies, accept_delivery
from calendly_sync.settings import Settings
from calendly_sync.signature import sign
from calendly_sync.table_items import Change, DeliveryItem, Origin, VersionedItem
from local.samples import Booking, event_type_envelope

KEY = "current-key"
ROTATED = "rotated-key"
NOW = 1_800_000_000.0
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
SETTINGS = Settings(table_name="calendly-test", signing_key_secret_id="signing-arn", token_secret_id=None)


@dataclass
class FakeStore:
    """Delivery records by key, as the table's conditional PutItem keeps them."""

    deliveries: dict[table_items.ItemKey, DeliveryItem] = field(default_factory=dict)

    def record_delivery(self, delivery: DeliveryItem) -> bool:
        if delivery.key in self.deliveries:
            return False
        self.deliveries[delivery.key] = delivery
        return True


@dataclass
class FakeKeys:
    """The signing keys as cached, and what a forced re-read answers (None: too soon)."""

    cached: tuple[str, ...] = (KEY,)
    fresh: tuple[str, ...] | Exception | None = None
    rereads: int = 0

    def signing_keys(self) -> tuple[str, ...]:
        return self.cached

    def refreshed_signing_keys(self) -> tuple[str, ...] | None:
        self.rereads += 1
        if isinstance(self.fresh, Exception):
            raise self.fresh
        return self.fresh


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    # The domain adds metrics that a handler would flush; these tests have no handler.
    yield
    metrics.clear_metrics()


def wired(store: FakeStore, keys: FakeKeys, **settings: int) -> ReceiverDependencies:
    return ReceiverDependencies(replace(SETTINGS, **settings), store, keys, clock=lambda: NOW)


def signed_booking() -> tuple[bytes, dict[str, object]]:
    envelope = Booking(start=START).book()
    return json.dumps(envelope).encode(), envelope


# --- signature verdicts -> stored, duplicate or refused -----------------------------------


def test_a_genuine_delivery_is_stored_once_and_its_repeat_is_a_duplicate() -> None:
    # Given a delivery signed with the current key just now
    raw, envelope = signed_booking()
    store, keys = FakeStore(), FakeKeys()
    header = sign(raw, KEY, int(NOW))

    # When it arrives twice
    first = accept_delivery(raw, header, wired(store, keys))
    again = accept_delivery(raw, header, wired(store, keys))

    # Then it is stored once, under one dedupe key, and the keys were never re-read
    assert (first.status, again.status) == ("stored", "duplicate")
    assert first.dedupe_key == again.dedupe_key and first.event == envelope["event"]
    (item,) = store.deliveries.values()
    assert item.key == table_items.delivery_key(first.dedupe_key) and item.attributes["body"] == raw.decode()
    assert keys.rereads == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("t=1,v1", "malformed"),
        (lambda raw: sign(raw, KEY, int(NOW) - 181), "stale"),
        (lambda raw: sign(raw, KEY, int(NOW) + 31), "future"),
    ],
)
def test_a_signature_that_cannot_be_genuine_is_refused_401_without_reading_the_keys_again(
    header: object, reason: str
) -> None:
    # Given a delivery whose signature is missing, malformed, too old or from the future
    raw, _ = signed_booking()
    store, keys = FakeStore(), FakeKeys(fresh=(KEY,))
    value = header(raw) if callable(header) else header

    # When it arrives
    with pytest.raises(SignatureRejected) as refused:
        accept_delivery(raw, value, wired(store, keys))  # type: ignore[arg-type]

    # Then it is refused as a signature failure (401), nothing is stored, the keys are not re-read
    assert refused.value.reason == reason and http_status_for(refused.value) == 401
    assert store.deliveries == {} and keys.rereads == 0


def test_a_signature_by_a_rotated_key_is_accepted_once_the_keys_are_read_again() -> None:
    # Given keys cached before a rotation, and a delivery signed with the new key
    raw, _ = signed_booking()
    store, keys = FakeStore(), FakeKeys(cached=(KEY,), fresh=(ROTATED, KEY))

    # When it arrives
    receipt = accept_delivery(raw, sign(raw, ROTATED, int(NOW)), wired(store, keys))

    # Then the keys were read afresh once, and the delivery stored
    assert receipt.status == "stored" and keys.rereads == 1


@pytest.mark.parametrize("fresh", [None, (KEY,)])
def test_a_forgery_is_refused_401_whether_or_not_the_keys_could_be_read_again(
    fresh: tuple[str, ...] | None,
) -> None:
    # Given a delivery signed with a key we never gave out (re-read too soon, or re-read in vain)
    raw, _ = signed_booking()
    store, keys = FakeStore(), FakeKeys(fresh=fresh)

    # When it arrives, then it is a mismatch (401) and nothing is stored
    with pytest.raises(SignatureRejected) as refused:
        accept_delivery(raw, sign(raw, "forged", int(NOW)), wired(store, keys))
    assert refused.value.reason == "mismatch" and http_status_for(refused.value) == 401
    assert store.deliveries == {}


def test_secrets_manager_down_while_re_reading_keeps_the_401_not_a_503() -> None:
    # Given the cached keys refuse a forgery and Secrets Manager cannot be reached
    raw, _ = signed_booking()
    keys = FakeKeys(fresh=SecretUnavailable("could not read a secret (ServiceUnavailable)"))

    # When the forgery arrives, then the cached keys' verdict stands
    with pytest.raises(SignatureRejected) as refused:
        accept_delivery(raw, sign(raw, "forged", int(NOW)), wired(FakeStore(), keys))
    assert http_status_for(refused.value) == 401 and keys.rereads == 1


@pytest.mark.parametrize(
    ("raw", "error", "status"),
    [
        (b"x" * 101, PayloadTooLarge, 413),
        (b"not json", NotAnEnvelope, 400),
        (b'{"event": "invitee.created"}', NotAnEnvelope, 400),
    ],
)
def test_a_body_too_large_or_not_an_envelope_is_refused_with_its_own_status(
    raw: bytes, error: type[CalendlySyncError], status: int
) -> None:
    # Given a body over the size limit, or a signed body that is not a Calendly envelope
    store = FakeStore()

    # When it arrives, then it is refused with the status that says which
    with pytest.raises(error) as refused:
        accept_delivery(raw, sign(raw, KEY, int(NOW)), wired(store, FakeKeys(), max_webhook_body_bytes=100))
    assert http_status_for(refused.value) == status and store.deliveries == {}


def test_the_size_limit_is_checked_before_the_signature() -> None:
    # Given an oversized body with no signature at all
    raw = b"x" * 101

    # When it arrives, then it is too large (the signature is not even looked at)
    with pytest.raises(PayloadTooLarge):
        accept_delivery(raw, None, wired(FakeStore(), FakeKeys(), max_webhook_body_bytes=100))


# --- the projector --------------------------------------------------------------------------


@dataclass
class FakeTable:
    """Versioned items newer-wins, links always, as ``CalendlyTable.apply_changes`` writes them."""

    versions: dict[table_items.ItemKey, str] = field(default_factory=dict)
    origins: list[Origin] = field(default_factory=list)

    def apply_changes(self, changes: Sequence[Change], *, origin: Origin) -> ChangeOutcome:
        self.origins.append(origin)
        applied, stale = [], []
        for change in changes:
            if isinstance(change, VersionedItem):
                if self.versions.get(change.key, "") >= change.version:
                    stale.append(change)
                    continue
                self.versions[change.key] = change.version
            applied.append(change)
        return ChangeOutcome(tuple(applied), tuple(stale))


def test_a_booking_is_applied_as_its_invitee_and_event_and_a_replay_is_stale() -> None:
    # Given a stored booking delivery
    body = json.dumps(Booking(start=START).book())
    table = FakeTable()

    # When it is projected twice (a stream record retried)
    first = project_delivery(body, table, dedupe_key="d1")
    again = project_delivery(body, table, dedupe_key="d1")

    # Then the invitee and its event were written once, as seen by a webhook
    assert (first.applied, first.stale, first.unrecognized) == (2, 0, False)
    assert (again.applied, again.stale) == (0, 2)
    assert {key.sk.split("#")[0] for key in table.versions} == {"EVENT", "INVITEE"}
    assert table.origins == [table_items.WEBHOOK, table_items.WEBHOOK]


def test_a_cancellation_applied_before_its_booking_is_not_undone_by_it() -> None:
    # Given a booking and its cancellation, delivered in reverse order
    booking = Booking(start=START)
    booked, canceled = json.dumps(booking.book()), json.dumps(booking.cancel())
    table = FakeTable()

    # When both are projected
    project_delivery(canceled, table)
    late = project_delivery(booked, table)

    # Then the older booking changes nothing
    assert late.applied == 0 and late.stale == 2


def test_a_known_event_with_an_unexpected_payload_is_counted_unrecognized() -> None:
    # Given an invitee.created delivery whose payload names no invitee
    body = json.dumps({"event": "invitee.created", "created_at": "2026-12-01T15:00:00Z", "payload": {}})

    # When it is projected, then nothing is applied and it is flagged
    projection = project_delivery(body, FakeTable())
    assert (projection.applied, projection.unrecognized) == (0, True)


def test_an_unknown_event_is_kept_raw_and_not_called_unrecognized() -> None:
    body = json.dumps({"event": "something.new", "created_at": "2026-12-01T15:00:00Z", "payload": {"a": 1}})

    projection = project_delivery(body, FakeTable())

    assert (projection.event, projection.applied, projection.unrecognized) == ("something.new", 0, False)


def test_an_event_type_delivery_is_applied_as_one_item() -> None:
    projection = project_delivery(json.dumps(event_type_envelope()), FakeTable())
    assert (projection.applied, projection.unrecognized) == (1, False)
