"""The one table: writes with the dedupe and newer-wins rules, and the documented read patterns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from calendly_sync import table_items
from calendly_sync.adapters.aws_clients import dynamodb_client
from calendly_sync.errors import StorageRefusedItem, StorageUnavailable
from calendly_sync.table_items import AttributeValue, Change, DeliveryItem, ItemKey, Origin, VersionedItem

BY_TIME_INDEX = "ByTime"
BY_EMAIL_INDEX = "ByEmail"

_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    applied: tuple[Change, ...] = ()
    #: Items left as they were because the table already holds a newer version.
    stale: tuple[Change, ...] = ()


@dataclass(slots=True)
class CalendlyTable:
    table_name: str
    client: Any = field(default_factory=dynamodb_client)

    # --- writes ----------------------------------------------------------------------

    def record_delivery(self, delivery: DeliveryItem) -> bool:
        """Store a delivery's audit record unless it is there already: False for a repeat.

        One conditional PutItem: the webhook's whole storage cost. The resources the delivery
        carries are applied from the table's stream (``projector``), so a repeat, which
        writes nothing, has no effect at all.
        """
        return self._conditional_write(
            "put_item",
            TableName=self.table_name,
            Item={**_key(delivery.key), **_attributes(delivery.attributes)},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def apply_changes(self, changes: Sequence[Change], *, origin: Origin) -> ChangeOutcome:
        """Write each change on its own: versioned items only if newer, links always.

        Every write is idempotent, so a change applied twice (a stream record retried, a
        poll and a webhook carrying the same state) leaves the item as one write would.
        Versioned items also record ``origin`` (how the change was seen) for the publisher, and
        count the writes that landed on them in ``sequence`` (one more per write), which orders a
        subject's downstream events.
        """
        applied: list[Change] = []
        stale: list[Change] = []
        for change in changes:
            written = self._conditional_write("update_item", **self._change_operation(change, origin))
            (applied if written else stale).append(change)
        return ChangeOutcome(tuple(applied), tuple(stale))

    def _conditional_write(self, operation: str, **arguments: Any) -> bool:
        """One write; False when its condition did not hold, ``StorageUnavailable`` on any failure."""
        try:
            getattr(self.client, operation)(**arguments)
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            if _error_code(error) == "ValidationException":
                # DynamoDB's message names the rule ("Item size has exceeded the maximum
                # allowed size"), never an attribute's value.
                message = error.response.get("Error", {}).get("Message", "")
                raise StorageRefusedItem(f"DynamoDB refused the item: {message[:200]}") from None
            raise StorageUnavailable(f"DynamoDB write failed ({_error_code(error)})") from None
        except BotoCoreError as error:
            raise StorageUnavailable(f"DynamoDB unreachable ({type(error).__name__})") from None
        return True

    def _change_operation(self, change: Change, origin: Origin) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments: list[str] = []
        removals: list[str] = []
        attributes: dict[str, AttributeValue] = dict(change.attributes)
        if isinstance(change, VersionedItem):
            attributes["version"] = change.version
            attributes["origin"] = origin.via
            attributes["publish"] = origin.publish
        for index, (name, value) in enumerate(sorted(attributes.items())):
            names[f"#a{index}"] = name
            if value is None:
                removals.append(f"#a{index}")
            else:
                values[f":a{index}"] = _attribute(value)
                assignments.append(f"#a{index} = :a{index}")
        if isinstance(change, VersionedItem):
            # Counts the writes that landed on the item: a downstream event's ``sequence``.
            names["#sequence"] = "sequence"
            values[":one"] = {"N": "1"}
            values[":zero"] = {"N": "0"}
            assignments.append("#sequence = if_not_exists(#sequence, :zero) + :one")
        expression = "SET " + ", ".join(assignments)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(change.key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if isinstance(change, VersionedItem):
            names["#version"] = "version"
            values[":version"] = {"S": change.version}
            update["ConditionExpression"] = "attribute_not_exists(#version) OR #version < :version"
        return update

    def stored_versions(self, keys: Sequence[ItemKey]) -> dict[ItemKey, str]:
        """``version`` of each stored item among ``keys`` (absent ones are left out), 100 per request."""
        found: dict[ItemKey, str] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [_key(key) for key in unique[start : start + 100]],
                    "ProjectionExpression": "pk, sk, #version",
                    "ExpressionAttributeNames": {"#version": "version"},
                }
            }
            while request:
                response = self._call("batch_get_item", RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    if "version" in item:
                        found[ItemKey(item["pk"]["S"], item["sk"]["S"])] = item["version"]["S"]
                request = response.get("UnprocessedKeys") or {}
        return found

    def claim_lease(self, name: str, owner: str, now: int, seconds: int) -> bool:
        """Hold ``SYNC`` / ``LEASE#<name>`` until ``now + seconds`` unless another owner holds it."""
        return self._conditional_write(
            "update_item",
            TableName=self.table_name,
            Key=_key(table_items.sync_state_key(f"LEASE#{name}")),
            UpdateExpression="SET #owner = :owner, #until = :until, entity = :entity",
            ConditionExpression="attribute_not_exists(#until) OR #until < :now OR #owner = :owner",
            ExpressionAttributeNames={"#owner": "owner", "#until": "until"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":until": {"N": str(now + seconds)},
                ":now": {"N": str(now)},
                ":entity": {"S": "sync_state"},
            },
        )

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (it expires now), unless it has passed to another owner meanwhile.

        An update rather than a delete: the poller's role already holds UpdateItem for the
        claim, so releasing needs no DeleteItem anywhere (README, "Least privilege").
        """
        self._conditional_write(
            "update_item",
            TableName=self.table_name,
            Key=_key(table_items.sync_state_key(f"LEASE#{name}")),
            UpdateExpression="SET #until = :released",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner", "#until": "until"},
            ExpressionAttributeValues={":owner": {"S": owner}, ":released": {"N": "0"}},
        )

    def save_checkpoint(
        self, name: str, attributes: Mapping[str, AttributeValue], *, expected_seq: int | None
    ) -> int:
        """Write a checkpoint only over the one this run last read or wrote (optimistic ``seq``).

        A run that overran its lease and was overtaken cannot overwrite the newer run's place.
        Returns the new ``seq``.
        """
        seq = 1 if expected_seq is None else expected_seq + 1
        item = {
            **_key(table_items.sync_state_key(f"CHECKPOINT#{name}")),
            **_attributes({"entity": "sync_state", **attributes, "seq": seq}),
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_seq is None
            else {
                "ConditionExpression": "#seq = :expected",
                "ExpressionAttributeNames": {"#seq": "seq"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_seq)}},
            }
        )
        if not self._conditional_write("put_item", TableName=self.table_name, Item=item, **condition):
            raise StorageUnavailable("another run moved the checkpoint on; this run stops")
        return seq

    def checkpoint(self, name: str) -> dict[str, Any] | None:
        return self.get(table_items.sync_state_key(f"CHECKPOINT#{name}"))

    def put_sync_state(self, name: str, attributes: Mapping[str, AttributeValue]) -> None:
        """Replace one sync-state record (``SYNC`` / ``name``): the connection, the subscription."""
        key = table_items.sync_state_key(name)
        item = {**_key(key), **_attributes({"entity": "sync_state", **attributes})}
        self._call("put_item", TableName=self.table_name, Item=item)

    def sync_state(self, name: str) -> dict[str, Any] | None:
        return self.get(table_items.sync_state_key(name))

    # --- reads (the access patterns in the README) ----------------------------------

    def get(self, key: ItemKey) -> dict[str, Any] | None:
        response = self._call("get_item", TableName=self.table_name, Key=_key(key), ConsistentRead=True)
        item = response.get("Item")
        return _plain(item) if item else None

    def scheduled_event_with_invitees(self, event_uuid: str) -> list[dict[str, Any]]:
        """Pattern 1: the event item and every invitee item, in one query."""
        return list(
            self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": table_items.scheduled_event_key(event_uuid).pk}},
            )
        )

    def scheduled_events_starting(self, start: str, end: str) -> list[dict[str, Any]]:
        """Pattern 2: scheduled events with ``start <= start_time < end`` (UTC ISO-8601), by start."""
        found: list[dict[str, Any]] = []
        for day in _utc_days(start, end):
            found.extend(
                self._query(
                    IndexName=BY_TIME_INDEX,
                    KeyConditionExpression="gsi1pk = :day AND gsi1sk BETWEEN :start AND :end",
                    ExpressionAttributeValues={
                        ":day": {"S": table_items.start_day_partition(day)},
                        ":start": {"S": start},
                        ":end": {"S": end},
                    },
                )
            )
        return [item for item in found if item.get("start_time", "") < end]

    def bookings_of_email(self, email: str) -> list[dict[str, Any]]:
        """Pattern 3: the invitee items of one email address, oldest booking first."""
        return self._index_partition(BY_EMAIL_INDEX, "gsi2pk", table_items.email_partition(email))

    def deliveries_received(self, day: str) -> list[dict[str, Any]]:
        """Pattern 4: every delivery received on a UTC day (YYYY-MM-DD), in arrival order."""
        return self._index_partition(BY_TIME_INDEX, "gsi1pk", table_items.delivery_day_partition(day))

    def _index_partition(self, index: str, key_name: str, partition: str) -> list[dict[str, Any]]:
        return list(
            self._query(
                IndexName=index,
                KeyConditionExpression=f"{key_name} = :partition",
                ExpressionAttributeValues={":partition": {"S": partition}},
            )
        )

    def _query(self, **arguments: Any) -> Iterator[dict[str, Any]]:
        arguments["TableName"] = self.table_name
        while True:
            response = self._call("query", **arguments)
            yield from (_plain(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        return call_dynamodb(self.client, operation, **arguments)


def call_dynamodb(client: Any, operation: str, **arguments: Any) -> dict[str, Any]:
    """One DynamoDB call; any failure is ``StorageUnavailable`` (naming the error type, never the item)."""
    try:
        response: dict[str, Any] = getattr(client, operation)(**arguments)
        return response
    except (ClientError, BotoCoreError) as error:
        raise StorageUnavailable(f"DynamoDB {operation} failed ({type(error).__name__})") from None


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _key(key: ItemKey) -> dict[str, Any]:
    return {"pk": {"S": key.pk}, "sk": {"S": key.sk}}


def _attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {name: _attribute(value) for name, value in attributes.items() if value is not None}


def _attribute(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"unsupported attribute type {type(value).__name__}")


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    # Numbers come back as Decimal; every number we store is a whole one.
    return {name: int(value) if type(value).__name__ == "Decimal" else value for name, value in plain.items()}


def _utc_days(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
    return [(first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)]
