"""Functions' answers as text for a person. Every key is optional, so newer answers still render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_LABEL_WIDTH = 16


def render_validation(answer: Mapping[str, Any], *, unicode: bool = True) -> str:
    """ValidateCredentialsFunction's answer: the verdict, one line per check, then who the token is."""
    verdict = "valid" if answer.get("valid") is True else "NOT valid"
    lines = [_headline(answer.get("valid") is True, f"token {verdict}", answer.get("message"), unicode)]
    checks = answer.get("checks")
    if isinstance(checks, list) and checks:
        lines.append("checks")
        for check in checks:
            if not isinstance(check, Mapping):
                lines.append(f"  ? {_text(check)}")
                continue
            detail = _text(check.get("detail"))
            name = _text(check.get("name")) or "(unnamed)"
            line = f"  {_mark(check.get('ok') is True, unicode)} {name}"
            lines.append(f"{line}: {detail}" if detail else line)
    for key in ("user", "organization", "role", "scope"):
        if answer.get(key):
            lines.append(_field(key, answer[key], indent=""))
    if "saved" in answer:
        lines.append(_field("saved", _yes_no(answer.get("saved")), indent=""))
    return "\n".join(lines)


def render_subscription(answer: Mapping[str, Any], *, unicode: bool = True) -> str:
    """WebhookSubscriptionFunction's answer: the verdict, the subscription, what was deleted, notes."""
    ok = answer.get("ok") is True
    lines = [_headline(ok, "ok" if ok else "NOT ok", answer.get("message"), unicode)]
    if answer.get("action"):
        lines.append(_field("action", answer["action"], indent=""))
    subscription = answer.get("subscription")
    if isinstance(subscription, Mapping):
        lines.append(_field("subscription", subscription.get("uri") or "(no uri)", indent=""))
        for key, label in (
            ("state", "state"),
            ("callback_url", "callback url"),
            ("events", "events"),
            ("created_at", "created at"),
        ):
            if subscription.get(key):
                lines.append(_field(label, subscription[key]))
        if "retry_started_at" in subscription:
            since = subscription.get("retry_started_at")
            lines.append(_field("retrying", f"since {since}" if since else "no"))
        if "matches" in subscription:
            lines.append(_field("matches stack", _yes_no(subscription.get("matches"))))
        lines.extend(_list("problems", subscription.get("problems"), indent="  "))
    elif "subscription" in answer:
        lines.append(_field("subscription", "none", indent=""))
    lines.extend(_list("deleted", answer.get("deleted"), indent=""))
    lines.extend(_list("notes", answer.get("notes"), indent=""))
    return "\n".join(lines)


def unicode_ok(encoding: str | None) -> bool:
    """Whether the marks ✓/✗ can be written in ``encoding`` (else plain ``ok``/``FAIL``)."""
    try:
        "✓✗".encode(encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _headline(ok: bool, verdict: str, message: Any, unicode: bool) -> str:
    text = _text(message)
    return f"{_mark(ok, unicode)} {verdict}: {text}" if text else f"{_mark(ok, unicode)} {verdict}"


def _mark(ok: bool, unicode: bool) -> str:
    if unicode:
        return "✓" if ok else "✗"
    return "ok  " if ok else "FAIL"


def _yes_no(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value)
    return str(value)


def _field(label: str, value: Any, *, indent: str = "  ") -> str:
    return f"{indent}{label:<{_LABEL_WIDTH - len(indent)}} {_text(value)}"


def _list(label: str, values: Any, *, indent: str) -> list[str]:
    if not values:
        return []
    items = values if isinstance(values, list | tuple) else [values]
    return [f"{indent}{label}", *(f"{indent}  - {_text(item)}" for item in items)]
