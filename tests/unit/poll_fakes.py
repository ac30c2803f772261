"""Fakes for the poller's fast tests: an in-memory table, a scripted Calendly, a clock that is moved.

They keep the rules the real adapters keep where the poller depends on them (a versioned write
lands only over an older version; a checkpoint is saved only over the ``seq`` expected; a
lease is held until it expires; Calendly lists start times after ``min_start_time``, sorted,
100 a page) and record what was asked of them, so a test can state the order of things.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from calendly_sync.adapters.calendly import CallStats
from calendly_sync.adapters.dynamodb import ChangeOutcome
from calendly_sync.errors import CalendlyRejected, StorageUnavailable
from calendly_sync.observability import metrics
from calendly_sync.poll_dependencies import PollDependencies, PollRun
from calendly_sync.poll_report import PollReport
from calendly_sync.settings import Settings
from calendly_sync.table_items import Change, ItemKey, Origin, VersionedItem, format_utc

API = "https://api.calendly.com"
ORGANIZATION = f"{API}/organizations/ORG1"
USER = f"{API}/users/USER1"
TOKEN = "fake-token-1"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.moment, self.seconds = now, 1_000.0

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, delta: timedelta) -> None:
        self.moment += delta
        self.seconds += delta.total_seconds()


# --- the table ---------------------------------------------------------------------------


@dataclass
class Write:
    key: ItemKey
    versioned: bool
    origin: Origin


class FakeTable:
    def __init__(self) -> None:
        self.items: dict[ItemKey, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {
            "CONNECTION": {"user": USER, "organization": ORGANIZATION, "scope": "organization"}
        }
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.leases: dict[str, tuple[str, int]] = {}
        self.released: list[str] = []
        #: Every write that landed, in order.
        self.writes: list[Write] = []
        #: Every checkpoint saved, in order: (name, attributes).
        self.saves: list[tuple[str, dict[str, Any]]] = []
        #: Raised by the write of a change it answers True for (a write DynamoDB keeps refusing).
        self.refuse: Callable[[Change], bool] = lambda _: False
        self.refuse_release = False

    # leases
    def claim_lease(self, name: str, owner: str, now: int, seconds: int) -> bool:
        held = self.leases.get(name)
        if held is not None and held[1] >= now and held[0] != owner:
            return False
        self.leases[name] = (owner, now + seconds)
        return True

    def release_lease(self, name: str, owner: str) -> None:
        if self.refuse_release:
            raise StorageUnavailable("DynamoDB write failed (InternalServerError)")
        self.released.append(owner)
        if self.leases.get(name, ("", 0))[0] == owner:
            self.leases[name] = (owner, 0)

    # checkpoints and sync state
    def checkpoint(self, name: str) -> dict[str, Any] | None:
        saved = self.checkpoints.get(name)
        return dict(saved) if saved is not None else None

    def save_checkpoint(self, name: str, attributes: Mapping[str, Any], *, expected_seq: int | None) -> int:
        current = self.checkpoints.get(name, {}).get("seq")
        if current != expected_seq:
            raise StorageUnavailable("another run moved the checkpoint on; this run stops")
        seq = 1 if expected_seq is None else expected_seq + 1
        self.checkpoints[name] = {**attributes, "seq": seq}
        self.saves.append((name, dict(attributes)))
        return seq

    def sync_state(self, name: str) -> dict[str, Any] | None:
        state = self.states.get(name)
        return dict(state) if state is not None else None

    # items
    def stored_versions(self, keys: Sequence[ItemKey]) -> dict[ItemKey, str]:
        return {key: self.items[key]["version"] for key in keys if "version" in self.items.get(key, {})}

    def apply_changes(self, changes: Sequence[Change], *, origin: Origin) -> ChangeOutcome:
        applied: list[Change] = []
        stale: list[Change] = []
        for change in changes:
            if self.refuse(change):
                raise StorageUnavailable("DynamoDB write failed (InternalServerError)")
            stored = self.items.setdefault(change.key, {})
            if isinstance(change, VersionedItem):
                if "version" in stored and not stored["version"] < change.version:
                    stale.append(change)
                    continue
                stored.update(change.attributes, version=change.version, origin=origin.via)
            else:
                stored.update(change.attributes)
            applied.append(change)
            self.writes.append(Write(change.key, isinstance(change, VersionedItem), origin))
        return ChangeOutcome(tuple(applied), tuple(stale))

    def entity(self, kind: str) -> dict[ItemKey, dict[str, Any]]:
        return {key: item for key, item in self.items.items() if item.get("entity") == kind}


# --- Calendly ----------------------------------------------------------------------------


def scheduled_event(
    uuid: str, start: datetime, *, updated: datetime | None = None, status: str = "active"
) -> dict[str, Any]:
    changed = updated or start - timedelta(days=30)
    return {
        "uri": f"{API}/scheduled_events/{uuid}",
        "name": "Intro call",
        "status": status,
        "start_time": iso(start),
        "end_time": iso(start + timedelta(minutes=30)),
        "event_type": f"{API}/event_types/ET1",
        "created_at": iso(changed),
        "updated_at": iso(changed),
    }


def invitee(
    event_uuid: str, uuid: str, *, status: str = "active", updated: datetime | None = None
) -> dict[str, Any]:
    changed = updated or NOW - timedelta(days=30)
    return {
        "uri": f"{API}/scheduled_events/{event_uuid}/invitees/{uuid}",
        "event": f"{API}/scheduled_events/{event_uuid}",
        "status": status,
        "name": f"Guest {uuid}",
        "timezone": "UTC",
        "no_show": None,
        "created_at": iso(changed),
        "updated_at": iso(changed),
    }


def event_uuid_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


class FakeCalendly:
    """Calendly's data and its list semantics; ``client`` is the poller's client factory."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.invitees: dict[str, list[dict[str, Any]]] = {}
        self.event_types: list[dict[str, Any]] = [
            {
                "uri": f"{API}/event_types/ET1",
                "name": "Intro call",
                "updated_at": iso(NOW - timedelta(days=90)),
            }
        ]
        self.memberships: list[dict[str, Any]] = [
            {
                "uri": f"{API}/organization_memberships/M1",
                "role": "owner",
                "user": {"uri": USER},
                "organization": ORGANIZATION,
                "updated_at": iso(NOW - timedelta(days=90)),
            }
        ]
        self.valid_tokens = {TOKEN}
        #: Every call made, in order: (path, params).
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.clients: list[FakeClient] = []
        #: Decides, per page token used, whether Calendly refuses it as stale.
        self.stale: Callable[[str], bool] = lambda _: False
        #: Answers to give instead of the next scheduled-event pages (an unusable 200).
        self.odd_answers: list[object] = []
        #: Raised by every scheduled-event listing while set.
        self.refusal: Exception | None = None
        #: Called with each scheduled-event listing's query before it is answered (may raise).
        self.before_listing: Callable[[dict[str, str]], None] = lambda _: None
        #: Raised by every call to a path named here.
        self.failing: dict[str, Exception] = {}

    def add(self, uuid: str, start: datetime, invitees: int = 1, **kwargs: Any) -> dict[str, Any]:
        event = scheduled_event(uuid, start, **kwargs)
        self.events[uuid] = event
        self.invitees[uuid] = [invitee(uuid, f"{uuid}-i{n}") for n in range(invitees)]
        return event

    def client(self, token: str, deadline: float) -> FakeClient:
        made = FakeClient(self, token, deadline)
        self.clients.append(made)
        return made

    def listed(self, path: str) -> list[dict[str, str]]:
        return [params for called, params in self.calls if called == path]

    def invitee_lists(self) -> list[str]:
        return [path.split("/")[2] for path, _ in self.calls if path.endswith("/invitees")]

    def page_of_events(self, params: Mapping[str, str]) -> dict[str, Any]:
        if self.refusal is not None:
            raise self.refusal
        self.before_listing(dict(params))
        if self.odd_answers:
            return self.odd_answers.pop(0)  # type: ignore[return-value]
        low, high = params.get("min_start_time"), params.get("max_start_time")
        rows = sorted(
            (
                event
                for event in self.events.values()
                # "Start times after this time": the strict reading of Calendly's description.
                if (low is None or _at(event["start_time"]) > _at(low))
                and (high is None or _at(event["start_time"]) < _at(high))
            ),
            key=lambda e: (_at(e["start_time"]), e["uri"]),
        )
        token = params.get("page_token")
        if token is not None and self.stale(token):
            raise CalendlyRejected(
                "Calendly refused GET /scheduled_events: 400 Invalid Argument",
                status=400,
                title="Invalid Argument",
                detail="The supplied parameters are invalid.",
                parameters=("page_token",),
            )
        offset = int(token) if token else 0
        count = int(params.get("count", "20"))
        page = rows[offset : offset + count]
        following = str(offset + count) if offset + count < len(rows) else None
        return {"collection": page, "pagination": {"next_page_token": following}}


class FakeClient:
    def __init__(self, calendly: FakeCalendly, token: str, deadline: float) -> None:
        self.calendly, self.token, self.deadline = calendly, token, deadline
        self.stats = CallStats()

    def _call(self, path: str, params: Mapping[str, str] | None) -> None:
        self.stats.requests += 1
        self.calendly.calls.append((path, dict(params or {})))
        if path in self.calendly.failing:
            raise self.calendly.failing[path]
        if self.token not in self.calendly.valid_tokens:
            raise CalendlyRejected(
                "Calendly refused the request: 401 Unauthenticated",
                status=401,
                title="Unauthenticated",
                detail="The access token is revoked",
            )

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        self._call(path, params)
        if path == "/scheduled_events":
            return self.calendly.page_of_events(params or {})
        raise AssertionError(f"the fake Calendly does not answer GET {path}")

    def collection(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        self._call(path, params)
        if path == "/event_types":
            yield from self.calendly.event_types
        elif path == "/organization_memberships":
            yield from self.calendly.memberships
        else:
            raise AssertionError(f"the fake Calendly does not list {path}")

    def invitees(self, event_uri: str) -> Iterator[dict[str, Any]]:
        uuid = event_uuid_of(event_uri)
        self._call(f"/scheduled_events/{uuid}/invitees", {})
        yield from self.calendly.invitees.get(uuid, [])


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- wiring ------------------------------------------------------------------------------


def settings(**overrides: Any) -> Settings:
    return Settings(table_name="calendly-test", signing_key_secret_id=None, token_secret_id=None, **overrides)


@dataclass
class FakeTokens:
    """The token secret: ``current`` is what a read returns; ``refreshed`` what a forced read does."""

    current: str | None = TOKEN
    refreshed: str | None = None
    forced_reads: int = 0

    def __call__(self, *, force_fetch: bool = False) -> dict[str, Any] | None:
        if force_fetch:
            self.forced_reads += 1
            if self.refreshed is not None:
                self.current = self.refreshed
        return {"token": self.current} if self.current else None


@dataclass
class Poller:
    """A poller wired to fakes; ``run`` invokes it as the handler would."""

    table: FakeTable = field(default_factory=FakeTable)
    calendly: FakeCalendly = field(default_factory=FakeCalendly)
    clock: FakeClock = field(default_factory=FakeClock)
    tokens: FakeTokens = field(default_factory=FakeTokens)
    check_subscription: Callable[[Any], Any] | None = None
    remaining_ms: Callable[[], int] = lambda: 300_000
    settings: Settings = field(default_factory=settings)

    @property
    def dependencies(self) -> PollDependencies:
        return PollDependencies(
            settings=self.settings,
            table=self.table,
            calendly=self.calendly.client,  # type: ignore[arg-type]
            stored_token=self.tokens,
            check_subscription=self.check_subscription,
            clock=self.clock,
        )

    def run(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """One invocation; its metrics replace the last one's (the handler's ``log_metrics`` flushes)."""
        from calendly_sync.poller import poll

        metrics.clear_metrics()
        return poll({"mode": "sync"} if event is None else event, self.remaining_ms, self.dependencies)


def reading_run(
    table: FakeTable, calendly: FakeCalendly, *, remaining_ms: Callable[[], int] = lambda: 300_000
) -> PollRun:
    """What a ``WindowReader`` works with, for tests of the reader alone."""
    return PollRun(
        table,
        calendly.client(TOKEN, 0.0),  # type: ignore[arg-type]
        PollReport(mode="sync"),
        remaining_ms,
        FakeClock(),
    )


def format_time(moment: datetime) -> str:
    return format_utc(moment)
