"""Reading one start-time window of scheduled events by position, never by page token.

Calendly's page tokens are opaque and go stale (an old one is answered ``400 Invalid Argument``,
``page_token: is invalid``), so a token is used the moment it arrives and never stored. The
reader lists pages back to back, with only a DynamoDB version lookup between them, until it
holds enough work (events whose invitees must be listed), then does that work and lists again
from where it got to. Where it got to is a start time, the *position*: every event of the
window that starts before it has been applied. A stale token, a run cut off, or a crash costs
a fresh listing from the position, never a lost or repeated stretch.

Each event is committed after its invitees and their links, so a failed write never leaves an
event item that looks done while its invitees are missing: the event still looks changed to the
next run, which lists its invitees again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from calendly_sync import table_items
from calendly_sync.errors import CalendlyRejected, CalendlySyncError, CalendlyUnavailable
from calendly_sync.observability import logger
from calendly_sync.poll_dependencies import PollRun
from calendly_sync.poll_plan import Window
from calendly_sync.table_items import Change, ItemKey, VersionedItem

#: Stop taking new pages (or invitee lists) when less than this is left of the Lambda's time.
SAFETY_MARGIN_MS = 20_000
#: Stop listing and do the work once this many listed events need their invitees read: enough
#: to keep re-listings rare (each costs about one page), few enough to finish well within a run.
LIST_AHEAD_EVENTS = 500
#: Invitee lists read before their writes are committed together (one version lookup for all,
#: one look at the clock: a group takes seconds, well inside the safety margin).
COMMIT_GROUP = 50
#: Listings in a row that got nowhere (a token stale before it could be used) before giving up.
MAX_FRUITLESS_LISTINGS = 3
#: ``min_start_time`` is sent this much before the position. Calendly's OpenAPI says "start
#: times after this time": read strictly, the events at the position itself would be skipped.
#: Timestamps carry microseconds, so one microsecond earlier takes them in under either reading.
_INCLUSIVE = timedelta(microseconds=1)


def _never(_: VersionedItem) -> bool:
    return False


@dataclass(frozen=True)
class ReadRules:
    """How a run treats what it lists: the same for every window it reads."""

    #: ``organization`` (and ``user`` for a member's token) on every list call.
    owner_filter: Mapping[str, str]
    #: Once a sync has completed, what a run writes is what webhooks missed (counted as recovered).
    steady: bool = False
    #: Unchanged events whose invitees are listed all the same (no-show re-checks; a backfill: all).
    recheck: Callable[[VersionedItem], bool] = _never
    #: How the writes say they were seen (a quiet backfill's stay off the event bus).
    origin: table_items.Origin = table_items.POLL


class StalePageTokens(CalendlyUnavailable):
    """Calendly refused page tokens as stale even when used at once, listing after listing."""

    reason = "page_token_stale"


class AnswerUnusable(CalendlyUnavailable):
    """A 200 answer to a list call without the ``collection`` and ``pagination`` it documents."""

    reason = "calendly_answer_invalid"


class _OutOfTime(Exception):
    """Internal: the run's time is nearly up; save the position and stop."""


@dataclass
class _Listed:
    item: VersionedItem
    #: The event as Calendly listed it: its invitees' items keep its essentials.
    resource: Mapping[str, Any]
    changed: bool  # newer than the stored event: its invitees are listed and then it is written
    recheck: bool  # unchanged, but its invitees are listed again (no-show re-checks, backfill)
    done: bool = False

    @property
    def start(self) -> str:
        return str(self.item.attributes.get("start_time") or "")


#: Save the window's place: ``position`` None with ``finished`` True means read to its end.
SaveProgress = Callable[[datetime | None, bool], None]


class WindowReader:
    """Reads windows for one run; remembers what it applied, so a re-listing redoes nothing."""

    def __init__(self, run: PollRun, rules: ReadRules) -> None:
        self.run, self.rules = run, rules
        self.table, self.client, self.report = run.table, run.client, run.report
        self._applied: set[ItemKey] = set()
        self._seen: set[ItemKey] = set()
        self._batch: list[_Listed] = []
        self._position = datetime.min.replace(tzinfo=UTC)

    def read(self, window: Window, position: datetime, save: SaveProgress) -> bool:
        """Every event of ``window`` from ``position`` on; True when read to its end.

        False when the run's time ran out (the position is saved). Any error saves the
        position reached, then propagates.
        """
        self._position, self._batch = max(position, window.start), []
        fruitless = 0
        try:
            while True:
                started_at = self._position
                exhausted, stale = self._list(window)
                worked = self._apply()
                if exhausted:
                    save(None, True)
                    return True
                reached = self._reached()
                if reached == started_at and not worked:
                    fruitless += 1
                    if not stale or fruitless >= MAX_FRUITLESS_LISTINGS:
                        raise StalePageTokens(
                            "Calendly refused its own page tokens as stale before they could be used;"
                            " the next run resumes from the saved position"
                        )
                else:
                    fruitless = 0
                self._position, self._batch = reached, []
                save(reached, False)
        except _OutOfTime:
            save(self._reached(), False)
            return False
        except Exception:
            self._save_quietly(save)
            raise

    # --- listing ---------------------------------------------------------------------------

    def _list(self, window: Window) -> tuple[bool, bool]:
        """List from the position until enough work is held; ``(exhausted, stale token met)``."""
        params = {
            **self.rules.owner_filter,
            "min_start_time": table_items.format_utc(self._position - _INCLUSIVE),
            "max_start_time": table_items.format_utc(window.end),
            "sort": "start_time:asc",
            "count": "100",
        }
        token: str | None = None
        work = 0
        while True:
            self._need_time()
            try:
                answer = self.client.get(
                    "/scheduled_events", {**params, **({"page_token": token} if token else {})}
                )
            except CalendlyRejected as rejected:
                if token is None or not _stale_token(rejected):
                    raise
                self.report.page_token_restarts += 1
                logger.info("page token refused; listing again from the position", status=rejected.status)
                return False, True
            self.report.pages += 1
            events, token = _page_of(answer)
            work += self._take(events)
            if not token:
                return True, False
            if work >= LIST_AHEAD_EVENTS:
                return False, False

    def _take(self, events: list[Any]) -> int:
        """Add one page to the batch; how many of its events need their invitees read."""
        items: list[tuple[VersionedItem, Mapping[str, Any]]] = []
        read_at = table_items.format_utc(self.run.clock.now())
        for event in events:
            item = table_items.scheduled_event_item(event, known_at=read_at)
            if item is None or not item.attributes.get("start_time"):
                # Not silently dropped: counted, logged, and the run reported failed.
                self.report.unreadable_events += 1
                logger.warning("listed scheduled event cannot be read", uri=_uri_of(event))
                continue
            items.append((item, event))
        stored = self.table.stored_versions([item.key for item, _ in items])
        work = 0
        for item, event in items:
            if item.key in self._applied:
                self._batch.append(_Listed(item, event, changed=False, recheck=False, done=True))
                continue
            changed = _newer(stored.get(item.key), item.version)
            listed = _Listed(item, event, changed=changed, recheck=not changed and self.rules.recheck(item))
            listed.done = not (listed.changed or listed.recheck)
            if listed.done:
                self._count_seen(item.key)
            else:
                work += 1
            self._batch.append(listed)
        return work

    # --- applying --------------------------------------------------------------------------

    def _apply(self) -> bool:
        """Do the batch's work in start order, committing each group; True if anything was done."""
        pending = [listed for listed in self._batch if not listed.done]
        for offset in range(0, len(pending), COMMIT_GROUP):
            group = pending[offset : offset + COMMIT_GROUP]
            self._need_time()
            read: list[tuple[_Listed, list[list[Change]]]] = []
            try:
                for listed in group:
                    read.append((listed, self._invitees_of(listed)))
            finally:
                # What was read is committed even when time runs out part way.
                self._commit(read)
        return bool(pending)

    def _invitees_of(self, listed: _Listed) -> list[list[Change]]:
        item = listed.item
        self.report.invitee_lists += 1
        fallback = str(item.attributes["updated_at"])
        as_of = table_items.format_utc(self.run.clock.now())
        found: list[list[Change]] = []
        for invitee in self.client.invitees(str(item.attributes["uri"])):
            changes = table_items.invitee_changes(
                invitee, fallback_updated_at=fallback, as_of=as_of, scheduled_event=listed.resource
            )
            if changes:
                found.append(changes)
        return found

    def _commit(self, read: list[tuple[_Listed, list[list[Change]]]]) -> None:
        """Write each event after its invitees and links: a failure leaves the event unwritten."""
        if not read:
            return
        stored = self.table.stored_versions(
            [changes[0].key for _, per_invitee in read for changes in per_invitee]
        )
        for listed, per_invitee in read:
            fresh: list[Change] = []
            for changes in per_invitee:
                own = changes[0]
                if isinstance(own, VersionedItem) and _newer(stored.get(own.key), own.version):
                    fresh.extend(changes)  # the invitee and the links it carries
            if listed.changed:
                fresh.append(listed.item)  # last: the event says "done" only once all else landed
                self.report.events_changed += 1
            outcome = self.table.apply_changes(fresh, origin=self.rules.origin)
            written = sum(1 for change in outcome.applied if isinstance(change, VersionedItem))
            self.report.items_written += written
            if self.rules.steady:
                self.report.missed_deliveries_recovered += written
            listed.done = True
            self._applied.add(listed.item.key)
            self._count_seen(listed.item.key)

    def _count_seen(self, key: ItemKey) -> None:
        """Counted once handled, once a run: events listed again after a restart count once."""
        if key not in self._seen:
            self._seen.add(key)
            self.report.events_seen += 1

    # --- position --------------------------------------------------------------------------

    def _reached(self) -> datetime:
        """The start before which every event of the window has been applied."""
        for listed in self._batch:
            if not listed.done:
                return max(self._position, _parse(listed.start))
        if self._batch:
            # More events may start at the last one's time on the next page: not past it.
            return max(self._position, _parse(self._batch[-1].start))
        return self._position

    def _need_time(self) -> None:
        if self.run.remaining_ms() < SAFETY_MARGIN_MS:
            raise _OutOfTime

    def _save_quietly(self, save: SaveProgress) -> None:
        try:
            save(self._reached(), False)
        except CalendlySyncError as error:  # the older checkpoint stands: more is re-read, nothing lost
            logger.warning("checkpoint not saved after a failure", reason=error.reason)


def _stale_token(rejected: CalendlyRejected) -> bool:
    """Calendly's answer to an old token: 400 with ``details`` naming ``page_token``.

    A 400 naming nothing counts too: the same query was accepted without the token a moment ago.
    """
    return rejected.status == 400 and (not rejected.parameters or "page_token" in rejected.parameters)


def _newer(stored: str | None, version: str) -> bool:
    if stored is None:
        return True
    return stored < version and not table_items.same_state(stored, version)


def _page_of(answer: object) -> tuple[list[Any], str | None]:
    """The events and next token of one page; anything else is an unusable answer, not a last page."""
    collection = answer.get("collection") if isinstance(answer, dict) else None
    pagination = answer.get("pagination") if isinstance(answer, dict) else None
    token = pagination.get("next_page_token") if isinstance(pagination, dict) else None
    if (
        not isinstance(collection, list)
        or not isinstance(pagination, dict)
        or "next_page_token" not in pagination
    ):
        raise AnswerUnusable("Calendly answered GET /scheduled_events without a collection and pagination")
    if token is not None and (not isinstance(token, str) or not token):
        raise AnswerUnusable("Calendly answered GET /scheduled_events with an unusable next_page_token")
    return collection, token


def _uri_of(event: object) -> str | None:
    uri = event.get("uri") if isinstance(event, dict) else None
    return uri if isinstance(uri, str) else None


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
