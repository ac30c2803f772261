"""The README's sample events, one per detail-type, made by the publisher's own code.

``python -m tools.event_samples`` rewrites each sample between its ``<!-- sample:<detail-type> -->``
and ``<!-- /sample -->`` markers in README.md; ``--check`` exits 1 when one is stale (the tests
run the same check). Each sample is what ``calendly_sync.downstream`` publishes when the
deliveries named are applied in order to a table with the real table's rules (the tests'
``MemoryTable``), with ``calendly`` shortened to its ``uri``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import local  # noqa: F401  (puts the layer's package on the import path, as Lambda does)
from calendly_sync import table_items
from calendly_sync.deliveries import resource_changes
from calendly_sync.downstream.changes import DownstreamChange, record_changes
from calendly_sync.downstream.entries import SOURCE, detail_of
from calendly_sync.envelope import parse_envelope
from tests.downstream_helpers import MemoryTable

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CORPUS = ROOT / "tests" / "fixtures" / "calendly_real"
ORGANIZATION = "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"
_BLOCK = re.compile(r"(<!-- sample:(?P<kind>[a-z_.]+) -->\n)(?P<body>.*?)(<!-- /sample -->)", re.DOTALL)


@dataclass(frozen=True)
class Sample:
    detail_type: str
    #: The summary line a reader sees: where the sample comes from.
    origin: str
    deliveries: Callable[[], list[dict[str, Any]]]


def corpus(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    return body


def delivery(event: str, payload: dict[str, Any], created_at: str | None = None) -> dict[str, Any]:
    """A bare payload wrapped in Calendly's envelope, made when the payload's state was current."""
    made = created_at or payload.get("updated_at") or payload.get("created_at")
    return {"event": event, "created_at": made, "payload": payload}


def booked_before_canceled(canceled: dict[str, Any]) -> dict[str, Any]:
    """The booking a real cancellation ended: its invitee and event as they were before."""
    booked = copy.deepcopy(canceled)
    booked.update(status="active", cancellation=None, updated_at=booked["created_at"])
    booked["scheduled_event"].update(status="active", cancellation=None)
    booked["scheduled_event"]["updated_at"] = booked["scheduled_event"]["created_at"]
    return booked


def event_type(event: str, name: str, updated_at: str, **more: Any) -> dict[str, Any]:
    """An event type shaped like Calendly's (no public ``event_type.*`` delivery exists)."""
    payload = {
        "uri": "https://api.calendly.com/event_types/EEEEEEEEEEEEEEEE",
        "name": name,
        "slug": "intro-call",
        "active": event != "event_type.deleted",
        "kind": "solo",
        "duration": 30,
        "profile": {
            "type": "User",
            "name": "Host",
            "owner": "https://api.calendly.com/users/BBBBBBBBBBBBBBBB",
        },
        "created_at": "2026-11-01T08:00:00.000000Z",
        "updated_at": updated_at,
        **more,
    }
    return delivery(event, payload)


CANCELED = "flowrunner_payload_invitee_canceled_2025_by_host.json"
MARKED = "flowrunner_payload_invitee_no_show_marked_2025.json"
UNMARKED = "flowrunner_payload_invitee_no_show_unmarked_2025.json"
ET_CREATED = ("event_type.created", "Intro", "2026-11-01T08:00:00.000000Z")
ET_UPDATED = ("event_type.updated", "Intro call", "2026-11-02T08:00:00.000000Z")
ET_DELETED = ("event_type.deleted", "Intro call", "2026-11-03T08:00:00.000000Z")

SAMPLES = [
    Sample(
        "invitee.created",
        "from the real body `castor_invitee_created_2023_zoom.json`",
        lambda: [corpus("castor_invitee_created_2023_zoom.json")],
    ),
    Sample(
        "invitee.canceled",
        f"from the real body `{CANCELED}` (after its booking)",
        lambda: [
            delivery("invitee.created", booked_before_canceled(corpus(CANCELED))),
            delivery("invitee.canceled", corpus(CANCELED)),
        ],
    ),
    Sample(
        "invitee_no_show.created",
        f"from the real body `{MARKED}`",
        lambda: [delivery("invitee_no_show.created", corpus(MARKED))],
    ),
    Sample(
        "invitee_no_show.deleted",
        f"from the real body `{UNMARKED}` (after the mark)",
        lambda: [
            delivery("invitee_no_show.created", corpus(MARKED)),
            delivery("invitee_no_show.deleted", corpus(UNMARKED), "2025-04-17T19:50:00.000000Z"),
        ],
    ),
    Sample(
        "event_type.created",
        "from an event type body shaped like Calendly's (no public `event_type.*` body exists)",
        lambda: [event_type(*ET_CREATED)],
    ),
    Sample(
        "event_type.updated",
        "from the same event type renamed a day later",
        lambda: [event_type(*ET_CREATED), event_type(*ET_UPDATED)],
    ),
    Sample(
        "event_type.deleted",
        "from the same event type deleted",
        lambda: [
            event_type(*ET_CREATED),
            event_type(*ET_UPDATED),
            event_type(*ET_DELETED, deleted_at=ET_DELETED[2]),
        ],
    ),
    Sample(
        "routing_form_submission.created",
        "from the real body `docs_openapi_routing_form_submission_created.json`",
        lambda: [corpus("docs_openapi_routing_form_submission_created.json")],
    ),
    Sample(
        "scheduled_event.updated",
        "from the real cancellation above: its event's status moved to canceled",
        lambda: [
            delivery("invitee.created", booked_before_canceled(corpus(CANCELED))),
            delivery("invitee.canceled", corpus(CANCELED)),
        ],
    ),
]


def sample_event(sample: Sample) -> dict[str, Any]:
    """The last event of the sample's detail-type that its deliveries publish, as a consumer gets it."""
    table = MemoryTable()
    found: list[DownstreamChange] = []
    for body in sample.deliveries():
        table.apply(resource_changes(parse_envelope(json.dumps(body))), table_items.WEBHOOK)
        found.extend(
            change
            for record in table.take_stream()
            for change in record_changes(record.event_name, record.old_image, record.new_image)
        )
    change = [change for change in found if change.detail_type == sample.detail_type][-1]
    detail = detail_of(change, ORGANIZATION)
    detail["calendly"] = {
        "uri": change.calendly.get("uri"),
        "…": "(the rest of Calendly's object, as delivered or read)",
    }
    return {"source": SOURCE, "detail-type": sample.detail_type, "detail": detail}


def block(sample: Sample) -> str:
    text = json.dumps(sample_event(sample), indent=2, ensure_ascii=False)
    return (
        f"<details><summary><code>{sample.detail_type}</code>, {sample.origin}</summary>\n\n"
        f"```json\n{text}\n```\n\n</details>\n"
    )


def render(readme: str) -> str:
    by_kind = {sample.detail_type: sample for sample in SAMPLES}
    kinds = [match.group("kind") for match in _BLOCK.finditer(readme)]
    if sorted(kinds) != sorted(by_kind):
        raise SystemExit(f"README.md's sample markers {kinds} do not name each detail-type once")
    return _BLOCK.sub(
        lambda match: match.group(1) + block(by_kind[match.group("kind")]) + match.group(4), readme
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's samples are stale")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md's sample events are stale: run python -m tools.event_samples", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
