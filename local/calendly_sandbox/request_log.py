"""A record of the API requests the sandbox answered, so tests and benchmarks can count calls."""

from __future__ import annotations

import threading
from collections import Counter
from typing import NamedTuple


class RequestRecord(NamedTuple):
    method: str
    path: str
    status: int
    time: float  # epoch seconds when the response was produced


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._per_endpoint: Counter[str] = Counter()

    def add(self, record: RequestRecord, endpoint: str) -> None:
        """`endpoint` is the route template, e.g. "GET /scheduled_events/<event_uuid>"."""
        with self._lock:
            self._records.append(record)
            self._per_endpoint[endpoint] += 1

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def per_endpoint(self) -> dict[str, int]:
        with self._lock:
            return dict(self._per_endpoint)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for record in self._records
                if (method is None or record.method == method.upper())
                and (path_prefix is None or record.path.startswith(path_prefix))
            )

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._per_endpoint.clear()
