"""A fake FunctionInvoker and answers shaped like the stack's functions' (for the ops CLI tests)."""

from __future__ import annotations

import copy
import io
from typing import Any

TOKEN = "fake-calendly-pat.0123456789abcdefghijklmnopqrstuvwxyz.not-a-real-token"
ORGANIZATION = "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"
USER = "https://api.calendly.com/users/BBBBBBBBBBBBBBBB"
SUBSCRIPTION = "https://api.calendly.com/webhook_subscriptions/CCCCCCCCCCCCCCCC"


class FakeInvoker:
    """Records every call and answers with a canned answer (or raises it) per logical id.

    A list of answers is a script: each call takes the next one, and the last one repeats.
    """

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((logical_id, copy.deepcopy(payload)))
        answer = self.answers[logical_id]
        if isinstance(answer, list):
            made = sum(1 for called, _ in self.calls if called == logical_id)
            answer = answer[min(made, len(answer)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        result: dict[str, Any] = copy.deepcopy(answer)
        return result


def validation_answer(*, valid: bool = True) -> dict[str, Any]:
    return {
        "valid": valid,
        "message": "token accepted for organization scope" if valid else "the token's user is not an admin",
        "user": USER,
        "organization": ORGANIZATION if valid else None,
        "role": "owner" if valid else "user",
        "scope": "organization" if valid else None,
        "checks": [
            {"name": "users/me", "ok": True, "detail": "GET /users/me answered 200"},
            {"name": "organization role", "ok": valid, "detail": "owner" if valid else "role is user"},
        ],
        "saved": valid,
    }


def subscription_answer(*, ok: bool = True, action: str = "ensure") -> dict[str, Any]:
    return {
        "ok": ok,
        "action": action,
        "message": "subscription active with the current signing key" if ok else "subscription disabled",
        "subscription": {
            "uri": SUBSCRIPTION,
            "callback_url": "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/calendly",
            "state": "active" if ok else "disabled",
            "events": ["invitee.created", "invitee.canceled"],
            "retry_started_at": None if ok else "2026-01-02T03:04:05.000000Z",
            "created_at": "2026-01-01T00:00:00.000000Z",
            "matches": ok,
            "problems": [] if ok else ["state is disabled", "events differ: missing invitee_no_show.created"],
        },
        "deleted": ["https://api.calendly.com/webhook_subscriptions/OLD"] if ok else [],
        "notes": ["created before deleting what it replaces"],
    }


def poll_answer(**changes: Any) -> dict[str, Any]:
    """A PollCalendlyFunction answer: one finished sync run, with ``changes`` applied."""
    answer: dict[str, Any] = {
        "mode": "sync",
        "ok": True,
        "message": "",
        "done": True,
        "resumed": False,
        "window_start": "2026-01-01T00:00:00.000000Z",
        "window_end": "2026-07-30T00:00:00.000000Z",
        "pages": 3,
        "events_seen": 250,
        "events_changed": 20,
        "invitee_lists": 20,
        "items_written": 45,
        "missed_deliveries_recovered": 2,
        "event_types_seen": 6,
        "members_seen": 3,
        "calendly_requests": 30,
        "throttled": 1,
        "retries": 1,
        "subscription": "active",
        "duration_ms": 1500,
        "notes": [],
    }
    answer.update(changes)
    return answer


class Terminal(io.StringIO):
    """Standard input or output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Unreadable(io.StringIO):
    """Standard input that fails the test if anything reads it."""

    def read(self, size: int | None = -1) -> str:
        raise AssertionError("standard input must not be read")
