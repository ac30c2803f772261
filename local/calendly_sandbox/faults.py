"""Fault injection: settable knobs that make the sandbox misbehave the way the real service can.

Delivery knobs accept either a count or a probability, told apart by type so a test says exactly
what it means: an ``int`` N applies the fault to the next N deliveries, a ``float`` p in [0, 1]
applies it to each delivery with probability p (drawn from a generator seeded by the config).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any

CountOrProbability = int | float


def _check_count_or_probability(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be an int count or a float probability, not {value!r}")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{name} count must be >= 0")
    if isinstance(value, float) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} probability must be within [0, 1]")


@dataclass
class Faults:
    # API side: each counter is consumed by the next API requests (not /_sandbox/*).
    rate_limit_burst_429: int = 0
    server_errors: int = 0
    latency_seconds: float = 0.0
    # Delivery side.
    drop_deliveries: CountOrProbability = 0  # never sent, never retried (lost in transit)
    duplicate_deliveries: CountOrProbability = 0  # sent twice
    reorder_deliveries: bool | float = False  # hold deliveries back randomly and shuffle due batches
    bad_signature: CountOrProbability = 0  # signed with a wrong key

    seed: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(f"faults:{self.seed}")
        self._lock = threading.Lock()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("drop_deliveries", "duplicate_deliveries", "bad_signature"):
            _check_count_or_probability(name, value)
        elif name == "reorder_deliveries" and not isinstance(value, bool):
            _check_count_or_probability(name, float(value))
        elif name in ("rate_limit_burst_429", "server_errors") and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative int")
        elif name == "latency_seconds" and value < 0:
            raise ValueError("latency_seconds must be >= 0")
        super().__setattr__(name, value)

    # -- API side ---------------------------------------------------------------------------------

    def take_forced_429(self) -> bool:
        return self._take_counter("rate_limit_burst_429")

    def take_forced_500(self) -> bool:
        return self._take_counter("server_errors")

    # -- delivery side ----------------------------------------------------------------------------

    def should_drop(self) -> bool:
        return self._draw("drop_deliveries")

    def should_duplicate(self) -> bool:
        return self._draw("duplicate_deliveries")

    def should_forge_signature(self) -> bool:
        return self._draw("bad_signature")

    def reorder_hold(self, max_hold_seconds: float) -> float:
        """Extra delay for one delivery; 0 unless the reorder fault picks it."""
        with self._lock:
            setting = self.reorder_deliveries
            probability = 1.0 if setting is True else float(setting)
            if probability <= 0 or self._random.random() >= probability:
                return 0.0
            return self._random.uniform(0.0, max_hold_seconds)

    def shuffle(self, items: list[Any]) -> None:
        with self._lock:
            if self.reorder_deliveries:
                self._random.shuffle(items)

    def reset(self) -> None:
        for spec in fields(self):
            if spec.init and spec.name != "seed":
                setattr(self, spec.name, spec.default)

    def as_dict(self) -> dict[str, Any]:
        return {
            spec.name: getattr(self, spec.name) for spec in fields(self) if spec.init and spec.name != "seed"
        }

    def update(self, values: dict[str, Any]) -> None:
        known = {spec.name for spec in fields(self) if spec.init and spec.name != "seed"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            setattr(self, name, value)

    # -- helpers ----------------------------------------------------------------------------------

    def _take_counter(self, name: str) -> bool:
        with self._lock:
            remaining = getattr(self, name)
            if remaining <= 0:
                return False
            super().__setattr__(name, remaining - 1)
            return True

    def _draw(self, name: str) -> bool:
        with self._lock:
            setting = getattr(self, name)
            if isinstance(setting, int):
                if setting <= 0:
                    return False
                super().__setattr__(name, setting - 1)
                return True
            return self._random.random() < setting
