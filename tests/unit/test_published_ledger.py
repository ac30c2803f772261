"""The published-change ledger's batch requests against a scripted DynamoDB client (no moto).

DynamoDB may answer a batch with part of it unprocessed (throttling); the ledger sends that
part again, backing off, and fails clearly if it never goes through.
"""

from __future__ import annotations

from typing import Any

import pytest

from calendly_sync.adapters.published_ledger import LEDGER_SK, PublishedLedger, ledger_pk
from calendly_sync.errors import StorageUnavailable

TABLE = "calendly-test"


class ScriptedDynamoDB:
    """Leaves the first ``withheld`` answers' requests unprocessed; stores what goes through."""

    def __init__(self, withheld: int) -> None:
        self.withheld = withheld
        self.stored: set[str] = set()
        self.requests: list[tuple[str, int]] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        writes = RequestItems[TABLE]
        self.requests.append(("write", len(writes)))
        if self.withheld:
            self.withheld -= 1
            return {"UnprocessedItems": RequestItems}
        self.stored.update(write["PutRequest"]["Item"]["pk"]["S"] for write in writes)
        return {"UnprocessedItems": {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems[TABLE]["Keys"]
        self.requests.append(("get", len(keys)))
        if self.withheld:
            self.withheld -= 1
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
        found = [{"pk": key["pk"]} for key in keys if key["pk"]["S"] in self.stored]
        assert all(key["sk"]["S"] == LEDGER_SK for key in keys)
        return {"Responses": {TABLE: found}, "UnprocessedKeys": {}}


def ledger(client: ScriptedDynamoDB, sleeps: list[float]) -> PublishedLedger:
    return PublishedLedger(TABLE, client, clock=lambda: 1_800_000_000.0, sleep=sleeps.append)


def test_what_dynamodb_leaves_unprocessed_is_sent_again_until_it_goes_through() -> None:
    # GIVEN DynamoDB that leaves two answers' worth unprocessed
    client, sleeps = ScriptedDynamoDB(withheld=2), []
    published = ledger(client, sleeps)

    # WHEN 30 ids are recorded (two requests of at most 25) and then looked up
    ids = [f"{n:032x}" for n in range(30)]
    published.record_published(ids)
    client.withheld = 1
    found = published.already_published([*ids, "f" * 32])

    # THEN every id is stored once, found again, and the ledger backed off between rounds
    assert client.stored == {ledger_pk(change_id) for change_id in ids}
    assert found == set(ids)
    assert client.requests == [
        ("write", 25),
        ("write", 25),
        ("write", 25),
        ("write", 5),
        ("get", 31),
        ("get", 31),
    ]
    assert sleeps == [0.05, 0.1, 0.05]


def test_a_batch_never_processed_fails_clearly_after_its_rounds() -> None:
    # GIVEN DynamoDB that never processes the batch
    client, sleeps = ScriptedDynamoDB(withheld=1_000), []

    # WHEN ids are recorded THEN the ledger gives up with the project's storage error, backing off up to 1 s
    with pytest.raises(StorageUnavailable, match="unprocessed"):
        ledger(client, sleeps).record_published(["a" * 32])
    assert len(client.requests) == 6 and sleeps == [0.05, 0.1, 0.2, 0.4, 0.8]
