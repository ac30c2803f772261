"""Lambda's DynamoDB stream trigger, for one machine: read the table's stream, invoke a handler.

The filter and batch size come from the function's ``DynamoDB`` event in template.yaml, so
the local run sees exactly the records Lambda would hand it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from local.lambda_runtime import FakeLambdaContext, Handler, load_handler
from local.stack import resource


def _matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """Lambda event filtering, for the exact-value patterns the template uses."""
    for name, expected in pattern.items():
        if not isinstance(value, Mapping) or name not in value:
            return False
        if isinstance(expected, Mapping):
            if not _matches(expected, value[name]):
                return False
        elif value[name] not in expected:
            return False
    return True


class StreamPump:
    """Feeds the records of a table's stream to the function the template subscribes to it.

    With ``resume_at_failure`` a reported failure holds the stream where it is, as Lambda does
    for a function that retries until the stream's retention: the next ``drain`` hands the
    failed record and everything after it again (nothing skipped, nothing reordered). Without
    it the failure is only recorded and the pump moves on (``rewind`` re-reads the stream).
    """

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        function_logical_id: str,
        *,
        resume_at_failure: bool = False,
        wrap: Callable[[Handler], Handler] | None = None,
    ) -> None:
        self._streams = streams_client
        self._stream_arn = stream_arn
        self._function = function_logical_id
        handler = load_handler(function_logical_id)
        # A benchmark wraps the handler to count what it calls.
        self._handler = wrap(handler) if wrap else handler
        (event,) = [
            e["Properties"]
            for e in resource(function_logical_id)["Properties"]["Events"].values()
            if e["Type"] == "DynamoDB"
        ]
        self._batch_size: int = event.get("BatchSize", 100)
        self._patterns = [
            json.loads(f["Pattern"]) for f in event.get("FilterCriteria", {}).get("Filters", [])
        ]
        self._resume_at_failure = resume_at_failure
        self._held: list[dict[str, Any]] = []
        self._iterators: dict[str, str] = {}
        self.records_seen = 0
        self.failures: list[str] = []
        #: Time spent inside the handler (not reading the stream), for the benchmarks.
        self.handler_seconds = 0.0
        self.invocations = 0

    @property
    def held(self) -> int:
        """Records waiting to be handed again after a failure (``resume_at_failure`` only)."""
        return len(self._held)

    def drain(self) -> int:
        """Hand every record written since the last call to the function; returns how many."""
        handed = 0
        wanted = list(self._held)
        self._held = []
        for record_batch in self._read_new_records():
            wanted += [
                r for r in record_batch if not self._patterns or any(_matches(p, r) for p in self._patterns)
            ]
        for start in range(0, len(wanted), self._batch_size):
            batch = wanted[start : start + self._batch_size]
            failed = self._invoke(batch)
            self.failures.extend(failed)
            handed += len(batch)
            if failed and self._resume_at_failure:
                sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in wanted]
                known = [sequence_numbers.index(s) for s in failed if s in sequence_numbers[start:]]
                # An identifier Lambda cannot place fails the whole batch.
                self._held = wanted[min(known) if known else start :]
                break
        return handed

    def _invoke(self, batch: list[dict[str, Any]]) -> list[str]:
        """Invoke the handler with one batch; the sequence numbers it reports failed."""
        started = time.perf_counter()
        self.invocations += 1
        try:
            response = self._handler({"Records": batch}, FakeLambdaContext(function_name=self._function))
        except Exception:
            # A failed invocation (Powertools raises when every record failed): Lambda
            # retries the whole batch, so every record of it counts as failed.
            return [r["dynamodb"]["SequenceNumber"] for r in batch]
        finally:
            self.handler_seconds += time.perf_counter() - started
        return [f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])]

    def rewind(self) -> None:
        """Read the stream from its start again, as Lambda re-sends a batch whose invocation failed."""
        self._iterators.clear()
        self._held = []
        self.failures.clear()

    def _read_new_records(self) -> list[list[dict[str, Any]]]:
        description = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        batches: list[list[dict[str, Any]]] = []
        for shard in description["Shards"]:
            shard_id = shard["ShardId"]
            iterator = (
                self._iterators.get(shard_id)
                or self._streams.get_shard_iterator(
                    StreamArn=self._stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                records = [self._as_lambda_record(r) for r in page["Records"]]
                self._iterators[shard_id] = page.get("NextShardIterator") or iterator
                if not records:
                    break
                self.records_seen += len(records)
                batches.append(records)
                iterator = page.get("NextShardIterator")
        return batches

    def _as_lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if created is not None and not isinstance(created, int | float):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": dynamodb, "eventSourceARN": self._stream_arn}
