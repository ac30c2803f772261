"""The one table: writes with the dedupe and newer-wins rules, and the documented read patterns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from calendly_sync import records
from calendly_sync.adapters.aws_clients import dynamodb_client
from calendly_sync.errors import StorageUnavailable
from calendly_sync.records import AttributeValue, Change, DeliveryItem, ItemKey, VersionedItem

BY_TIME_INDEX = "ByTime"
BY_EMAIL_INDEX = "ByEmail"

_CONDITION_FAILED = "ConditionalCheckFailed"
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    duplicate: bool
    applied: tuple[Change, ...] = ()
    #: Items left as they were because the table already holds a newer version.
    stale: tuple[Change, ...] = ()
    effect: str = "applied"


@dataclass(slots=True)
class CalendlyTable:
    table_name: str
    client: Any = field(default_factory=dynamodb_client)

    # --- writes ----------------------------------------------------------------------

    def record_delivery(self, delivery: DeliveryItem, changes: Sequence[Change]) -> DeliveryOutcome:
        """Write a delivery's audit record and its changes in one transaction.

        The audit record's ``attribute_not_exists`` condition makes a repeated delivery a
        no-op. A change that loses the newer-wins check cancels the transaction; it is then
        dropped and the rest written again, so each retry is one request smaller and the
        usual case (nothing stale) costs exactly one request.
        """
        pending = list(changes)
        stale: list[Change] = []
        while True:
            effect = _effect(pending, stale)
            operations = [self._put_delivery(delivery, effect)] + [self._change_operation(c) for c in pending]
            reasons = self._transact(operations)
            if reasons is None:
                return DeliveryOutcome(False, tuple(pending), tuple(stale), effect)
            if reasons[0] == _CONDITION_FAILED:
                return DeliveryOutcome(True, effect="duplicate")
            lost = [
                change
                for change, reason in zip(pending, reasons[1:], strict=True)
                if reason == _CONDITION_FAILED
            ]
            if not lost:
                raise StorageUnavailable(f"transaction cancelled: {sorted(set(reasons))}")
            stale.extend(lost)
            pending = [change for change in pending if change not in lost]

    def _transact(self, operations: list[dict[str, Any]]) -> list[str] | None:
        """Run a transaction: None when it committed, else each operation's cancellation code."""
        try:
            self.client.transact_write_items(TransactItems=operations)
            return None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            reasons = [r.get("Code") or "None" for r in error.response.get("CancellationReasons", [])]
            only_conditions = all(r in (_CONDITION_FAILED, "None") for r in reasons)
            if code == "TransactionCanceledException" and len(reasons) == len(operations) and only_conditions:
                return reasons
            raise StorageUnavailable(f"DynamoDB write failed ({code}: {sorted(set(reasons))})") from None
        except BotoCoreError as error:
            raise StorageUnavailable(f"DynamoDB unreachable ({type(error).__name__})") from None

    def _put_delivery(self, delivery: DeliveryItem, effect: str) -> dict[str, Any]:
        item = {**_key(delivery.key), **_attributes({**delivery.attributes, "effect": effect})}
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _change_operation(self, change: Change) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        assignments: list[str] = []
        removals: list[str] = []
        attributes: dict[str, AttributeValue] = dict(change.attributes)
        if isinstance(change, VersionedItem):
            attributes["version"] = change.version
        for index, (name, value) in enumerate(sorted(attributes.items())):
            names[f"#a{index}"] = name
            if value is None:
                removals.append(f"#a{index}")
            else:
                values[f":a{index}"] = _attribute(value)
                assignments.append(f"#a{index} = :a{index}")
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
        return {"Update": update}

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
                ExpressionAttributeValues={":pk": {"S": records.scheduled_event_key(event_uuid).pk}},
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
                        ":day": {"S": records.start_day_partition(day)},
                        ":start": {"S": start},
                        ":end": {"S": end},
                    },
                )
            )
        return [item for item in found if item.get("start_time", "") < end]

    def bookings_of_email(self, email: str) -> list[dict[str, Any]]:
        """Pattern 3: the invitee items of one email address, oldest booking first."""
        return list(
            self._query(
                IndexName=BY_EMAIL_INDEX,
                KeyConditionExpression="gsi2pk = :email",
                ExpressionAttributeValues={":email": {"S": records.email_partition(email)}},
            )
        )

    def deliveries_received(self, day: str) -> list[dict[str, Any]]:
        """Pattern 4: every delivery received on a UTC day (YYYY-MM-DD), in arrival order."""
        return list(
            self._query(
                IndexName=BY_TIME_INDEX,
                KeyConditionExpression="gsi1pk = :day",
                ExpressionAttributeValues={":day": {"S": records.delivery_day_partition(day)}},
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
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**arguments)
            return response
        except (ClientError, BotoCoreError) as error:
            raise StorageUnavailable(f"DynamoDB {operation} failed ({type(error).__name__})") from None


def _effect(pending: Sequence[Change], stale: Sequence[Change]) -> str:
    if not pending and not stale:
        return "raw_only"
    if not stale:
        return "applied"
    return "partial" if any(isinstance(c, VersionedItem) for c in pending) else "stale"


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
