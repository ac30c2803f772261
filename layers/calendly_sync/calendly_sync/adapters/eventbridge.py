"""The downstream bus: PutEvents with a result per entry, AWS errors as ``PublishUnavailable``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from calendly_sync.downstream.entries import SOURCE, Entry
from calendly_sync.errors import PublishUnavailable


@dataclass(frozen=True, slots=True)
class EventBridgeBus:
    bus_name: str
    client: Any

    def put_events(self, entries: Sequence[Entry]) -> list[str | None]:
        """One PutEvents request (at most 10 entries): per entry, None if accepted, else its error code.

        EventBridge's ``Time`` is left to EventBridge: the time of publishing, which replays select on.
        """
        if not entries:
            return []
        try:
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": entry.detail_type,
                        "Detail": entry.detail,
                        "EventBusName": self.bus_name,
                    }
                    for entry in entries
                ]
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise PublishUnavailable(f"EventBridge PutEvents failed ({code})") from None
        except BotoCoreError as error:
            raise PublishUnavailable(f"EventBridge unreachable ({type(error).__name__})") from None
        results = response.get("Entries", [])
        if len(results) != len(entries):
            # Results pair with entries by position only; without one each, none can be trusted.
            raise PublishUnavailable("EventBridge answered PutEvents without a result per entry")
        return [
            None if result.get("EventId") and not result.get("ErrorCode") else str(result.get("ErrorCode"))
            for result in results
        ]
