"""The ledger of published changes: ``PUBLISHED#<change id>`` / ``PUBLISHED`` items on the one table.

It lets a stream batch handed again (after a failure, or a record retried) leave out what is
already on the bus. Items expire after a week by the table's TTL: far longer than the
stream's 24 hours, which bound how late a record can be handed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from calendly_sync.adapters.dynamodb import call_dynamodb
from calendly_sync.errors import StorageUnavailable

LEDGER_SK = "PUBLISHED"
RETENTION_SECONDS = 7 * 24 * 3600
_GET_LIMIT = 100
_WRITE_LIMIT = 25
#: Rounds of unprocessed keys or items retried before the call counts as failed.
_ATTEMPTS = 6


def ledger_pk(change_id: str) -> str:
    return f"PUBLISHED#{change_id}"


@dataclass(frozen=True, slots=True)
class PublishedLedger:
    table_name: str
    client: Any
    #: Seconds since the epoch (a fake clock in tests).
    clock: Callable[[], float] = time.time
    #: Between rounds of unprocessed keys or items (DynamoDB throttled part of a batch).
    sleep: Callable[[float], None] = time.sleep

    def already_published(self, change_ids: Sequence[str]) -> set[str]:
        """The ids among ``change_ids`` the ledger holds: consistent reads, 100 keys per request."""
        found: set[str] = set()
        unique = list(dict.fromkeys(change_ids))
        for start in range(0, len(unique), _GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {"pk": {"S": ledger_pk(change_id)}, "sk": {"S": LEDGER_SK}}
                        for change_id in unique[start : start + _GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk",
                }
            }
            for response in self._until_processed("batch_get_item", request, "UnprocessedKeys"):
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found.add(item["pk"]["S"].removeprefix("PUBLISHED#"))
        return found

    def record_published(self, change_ids: Sequence[str]) -> None:
        """Add the ids to the ledger (25 per request, unprocessed items written again)."""
        now = int(self.clock())
        unique = list(dict.fromkeys(change_ids))
        for start in range(0, len(unique), _WRITE_LIMIT):
            requests = [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": ledger_pk(change_id)},
                            "sk": {"S": LEDGER_SK},
                            "entity": {"S": "published"},
                            "published_at": {"N": str(now)},
                            "expires_at": {"N": str(now + RETENTION_SECONDS)},
                        }
                    }
                }
                for change_id in unique[start : start + _WRITE_LIMIT]
            ]
            batch = {self.table_name: requests}
            for _ in self._until_processed("batch_write_item", batch, "UnprocessedItems"):
                pass  # nothing to read from a write's answers but what was left unprocessed

    def _until_processed(
        self, operation: str, request: dict[str, Any], unprocessed: str
    ) -> Iterator[dict[str, Any]]:
        """Each answer to a batch request, sent again with what DynamoDB left unprocessed, backing off."""
        for attempt in range(_ATTEMPTS):
            response = self._call(operation, RequestItems=request)
            yield response
            request = response.get(unprocessed) or {}
            if not request:
                return
            if attempt + 1 < _ATTEMPTS:  # no wait before giving up
                self.sleep(min(0.05 * 2**attempt, 1.0))
        raise StorageUnavailable(f"DynamoDB left ledger requests unprocessed ({operation})")

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        return call_dynamodb(self.client, operation, **arguments)
