"""The ``sync`` and ``backfill`` loop: invoke PollCalendlyFunction until it says it is done.

A poll run that nears its Lambda deadline checkpoints and answers ``"done": false``; the next
run resumes from the checkpoint. :class:`PollLoop` invokes again while the answer is ok and
not done, up to ``max_runs``, and records why it stopped (one of the ``STOP_*`` reasons).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ops.invokers import FunctionInvoker
from ops.moments import parse_iso

POLL_CALENDLY = "PollCalendlyFunction"
DEFAULT_MAX_RUNS = 20

STOP_FINISHED = "finished"  # an answer said ok and done
STOP_FAILED = "failed"  # an answer said ok false
STOP_LEASE_HELD = "lease-held"  # another poll run is in progress
STOP_NO_PROGRESS = "no-progress"  # not done, yet no page was read: another run would do the same
STOP_MAX_RUNS = "max-runs"  # max_runs answers, none done

_LEASE_HELD_TEXT = "another poll run is in progress"


class PollLoop:
    """Iterating invokes the function and yields each answer; ``stop`` then says why it ended.

    The answers so far stay in ``answers`` even when an invoke raises part way.
    """

    def __init__(self, invoker: FunctionInvoker, payload: dict[str, Any], max_runs: int) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.invoker = invoker
        self.payload = payload
        self.max_runs = max_runs
        self.answers: list[dict[str, Any]] = []
        self.stop: str | None = None  # None until the loop has ended by itself

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _ in range(self.max_runs):
            answer = self.invoker.invoke(POLL_CALENDLY, dict(self.payload))
            self.answers.append(answer)
            self.stop = stop_reason(answer)
            yield answer
            if self.stop is not None:
                return
        self.stop = STOP_MAX_RUNS

    @property
    def finished(self) -> bool:
        return self.stop == STOP_FINISHED


def stop_reason(answer: Mapping[str, Any]) -> str | None:
    """Why the loop must stop after ``answer`` (a ``STOP_*`` value), or None to invoke again."""
    if answer.get("ok") is not True:
        return STOP_FAILED
    if answer.get("done") is True:
        return STOP_FINISHED
    if _LEASE_HELD_TEXT in str(answer.get("message") or "").lower():
        return STOP_LEASE_HELD
    if answer.get("pages") == 0:
        return STOP_NO_PROGRESS
    return None


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: an ISO-8601 date or date-time in the past (UTC when no offset is given).

    Raises ValueError with a message for a person; the message never repeats ``text``.
    """
    since = parse_iso(text)
    if since >= (now or datetime.now(UTC)):
        raise ValueError("is in the future: a backfill reads history up to now")
    return since


def backfill_fraction(since: datetime, answer: Mapping[str, Any], now: datetime) -> float | None:
    """How much of ``since``..``now`` the backfill has covered: the answer's ``window_end``.

    1.0 once the answer says done; None when the answer gives no usable ``window_end``.
    """
    if answer.get("done") is True and answer.get("ok") is True:
        return 1.0
    end = _parse_time(answer.get("window_end"))
    if end is None:
        return None
    total = (now - since).total_seconds()
    if total <= 0:
        return 1.0
    return min(1.0, max(0.0, (end - since).total_seconds() / total))


# The layer's poller parses stored times too (poll_plan.parse_time, through records); ops/ keeps
# its own few lines because it runs with boto3 alone, without the layer on the import path.
def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
