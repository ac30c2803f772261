"""The one comparison of the table's copy with what Calendly holds, for tests, the demo and the soak.

    from local.copy_check import compare, sandbox_facts, table_facts

    check = compare(sandbox_facts(sandbox.state), table_facts(items))
    assert check.matches, check.summary()

Both sides become the same shape first (``Facts``: resource URI -> the fields compared), so the
comparison itself knows neither DynamoDB nor the sandbox:

- Calendly's side from the sandbox's own state (``sandbox_facts``) or from resources as the
  API renders them (``api_facts``, for a client that reads Calendly over HTTP);
- the table's side from its items (``table_facts``), as a low-level scan returns them
  (``{"S": ...}``) or already decoded.

Compared: each invitee's status and whether it is marked a no-show, each scheduled event's status.
An invitee item without a status is a stub that a reschedule link left before the invitee's own
record arrived: it is not a copy of anything, so its invitee counts as missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.calendly_sandbox.state import SandboxState

Fields = dict[str, object]

INVITEE_FIELDS = ("status", "no_show")
SCHEDULED_EVENT_FIELDS = ("status",)


@dataclass(frozen=True)
class Facts:
    """What one side holds: resource URI -> the compared fields, per kind."""

    invitees: dict[str, Fields] = field(default_factory=dict)
    scheduled_events: dict[str, Fields] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldDifference:
    uri: str
    field: str
    calendly: object
    table: object


@dataclass(frozen=True)
class KindDiff:
    """One kind of resource compared: counts on each side and every difference, URIs sorted."""

    kind: str
    calendly_count: int
    table_count: int
    missing: tuple[str, ...] = ()  # Calendly holds them, the table does not
    extra: tuple[str, ...] = ()  # the table holds them, Calendly does not
    differing: tuple[FieldDifference, ...] = ()

    @property
    def matches(self) -> bool:
        return not (self.missing or self.extra or self.differing)

    def differing_on(self, name: str) -> tuple[str, ...]:
        """URIs whose ``name`` field differs."""
        return tuple(d.uri for d in self.differing if d.field == name)

    @property
    def lost(self) -> tuple[str, ...]:
        """URIs Calendly holds that the table lacks or holds otherwise."""
        return tuple(sorted({*self.missing, *(d.uri for d in self.differing)}))

    def summary(self, examples: int = 3) -> str:
        text = (
            f"{self.kind}: Calendly {self.calendly_count}, the table {self.table_count}; "
            f"{len(self.missing)} missing, {len(self.extra)} extra, "
            f"{len(self.lost) - len(self.missing)} differing"
        )
        shown = [f"missing {uri}" for uri in self.missing[:examples]]
        shown += [f"extra {uri}" for uri in self.extra[:examples]]
        shown += [f"{d.uri} {d.field}: Calendly {d.calendly!r}, table {d.table!r}" for d in self.differing][
            :examples
        ]
        return "\n".join([text, *(f"  {line}" for line in shown)])


@dataclass(frozen=True)
class CopyCheck:
    """The whole copy: it matches when every kind does."""

    invitees: KindDiff
    scheduled_events: KindDiff

    def summary(self, examples: int = 3) -> str:
        return f"{self.invitees.summary(examples)}\n{self.scheduled_events.summary(examples)}"

    @property
    def matches(self) -> bool:
        return self.invitees.matches and self.scheduled_events.matches


def compare(calendly: Facts, table: Facts) -> CopyCheck:
    return CopyCheck(
        invitees=_compare_kind("invitees", calendly.invitees, table.invitees),
        scheduled_events=_compare_kind("scheduled events", calendly.scheduled_events, table.scheduled_events),
    )


def sandbox_facts(state: SandboxState) -> Facts:
    """Calendly's side from the sandbox's own state (read under its lock)."""
    with state.lock:
        return Facts(
            invitees={
                state.uris.invitee(i.event_uuid, i.uuid): {
                    "status": str(i.status),
                    "no_show": i.no_show is not None,
                }
                for i in state.invitees.values()
            },
            scheduled_events={
                state.uris.scheduled_event(e.uuid): {"status": str(e.status)} for e in state.events.values()
            },
        )


def api_facts(scheduled_events: Iterable[Mapping[str, Any]], invitees: Iterable[Mapping[str, Any]]) -> Facts:
    """Calendly's side from resources as ``GET /scheduled_events`` and ``.../invitees`` render them."""
    return Facts(
        invitees={
            str(i["uri"]): {"status": i.get("status"), "no_show": bool(i.get("no_show"))} for i in invitees
        },
        scheduled_events={str(e["uri"]): {"status": e.get("status")} for e in scheduled_events},
    )


def table_facts(items: Iterable[Mapping[str, Any]]) -> Facts:
    """The table's side from its items, typed (``{"S": ...}``, as a client's scan gives) or plain."""
    facts = Facts()
    for item in items:
        entity, uri, status = _value(item.get("entity")), _value(item.get("uri")), _value(item.get("status"))
        if not isinstance(uri, str) or status is None:
            continue  # not a resource copy, or a stub (see the module's docstring)
        if entity == "invitee":
            facts.invitees[uri] = {"status": status, "no_show": bool(_value(item.get("no_show")))}
        elif entity == "scheduled_event":
            facts.scheduled_events[uri] = {"status": status}
    return facts


def _compare_kind(kind: str, calendly: Mapping[str, Fields], table: Mapping[str, Fields]) -> KindDiff:
    differing = [
        FieldDifference(uri, name, fields.get(name), table[uri].get(name))
        for uri, fields in sorted(calendly.items())
        if uri in table
        for name in sorted(fields.keys() | table[uri].keys())
        if fields.get(name) != table[uri].get(name)
    ]
    return KindDiff(
        kind=kind,
        calendly_count=len(calendly),
        table_count=len(table),
        missing=tuple(sorted(uri for uri in calendly if uri not in table)),
        extra=tuple(sorted(uri for uri in table if uri not in calendly)),
        differing=tuple(differing),
    )


def _value(attribute: object) -> object:
    """A plain value from an attribute in either form (``{"S": "x"}`` or ``"x"``); None if absent."""
    if isinstance(attribute, Mapping) and len(attribute) == 1:
        ((kind, value),) = attribute.items()
        if kind in ("S", "BOOL"):
            return value
        if kind == "N":
            return int(value)
        if kind == "NULL":
            return None
    return attribute
