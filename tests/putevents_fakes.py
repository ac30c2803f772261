"""PutEvents as AWS documents its refusals, and a failure queue, for the publisher's tests.

``StrictPutEvents`` stands in for the boto3 ``events`` client under the real
``EventBridgeBus`` adapter. Like EventBridge (API reference, ``PutEvents`` and
``PutEventsResultEntry``), it answers every request with ``FailedEntryCount`` and one result
per entry, in order: an ``EventId`` for an accepted entry, else ``ErrorCode`` and
``ErrorMessage``. A detail that is not JSON (``NaN``, ``Infinity``: what Python's ``json``
writes for a non-finite float) is refused with ``MalformedDetail``, and the tests can make it
refuse chosen change ids with any other documented code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from calendly_sync.errors import FailureQueueUnavailable


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def is_strict_json(text: str) -> bool:
    """Whether ``text`` is JSON as its RFC defines it (no ``NaN``/``Infinity``)."""
    try:
        json.loads(text, parse_constant=_not_json)
    except ValueError:
        return False
    return True


@dataclass
class StrictPutEvents:
    """A boto3 ``events`` client's ``put_events``, refusing entries the way AWS documents."""

    #: change id -> the ErrorCode to answer for its entry (``InternalFailure``, ``InvalidArgument``...).
    refuse: dict[str, str] = field(default_factory=dict)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    requests: int = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # boto3's parameter name
        self.requests += 1
        results: list[dict[str, Any]] = []
        for entry in Entries:
            code = self._refusal(entry)
            if code is None:
                self.accepted.append(entry)
                results.append({"EventId": str(uuid.uuid4())})
            else:
                self.refused.append((entry, code))
                results.append({"ErrorCode": code, "ErrorMessage": _MESSAGES.get(code, "Request failed.")})
        failed = sum(1 for result in results if "ErrorCode" in result)
        return {"FailedEntryCount": failed, "Entries": results}

    def _refusal(self, entry: Mapping[str, Any]) -> str | None:
        if not is_strict_json(entry["Detail"]):
            return "MalformedDetail"
        change_id = json.loads(entry["Detail"]).get("change_id")
        return self.refuse.get(change_id) if isinstance(change_id, str) else None

    def accepted_details(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.accepted]


_MESSAGES = {
    "MalformedDetail": "Detail is malformed.",
    "InvalidArgument": "Parameter(s) Detail is not valid.",
    "InternalFailure": "Internal failure, please retry.",
    "ThrottlingException": "Rate exceeded.",
    "AccessDeniedException": "User is not authorized to perform: events:PutEvents.",
}


@dataclass
class FakeFailureQueue:
    """Keeps what is set aside; ``unavailable`` makes it fail as SQS would in an outage."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    unavailable: bool = False

    def set_aside(self, message: Mapping[str, Any]) -> None:
        if self.unavailable:
            raise FailureQueueUnavailable("SQS SendMessage failed (ServiceUnavailable)")
        self.messages.append(json.loads(json.dumps(message)))
