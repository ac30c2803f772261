"""Functions' answers as text for a person. Every key is optional, so newer answers still render."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ops.poll import (
    STOP_FAILED,
    STOP_FINISHED,
    STOP_LEASE_HELD,
    STOP_MAX_RUNS,
    STOP_NO_PROGRESS,
    stop_reason,
)

_LABEL_WIDTH = 16
_POLL_LABEL_WIDTH = 28
_BAR_WIDTH = 20

#: What the poll summary adds up over the runs, with its labels.
POLL_TOTALS = (
    ("events_seen", "events seen"),
    ("events_changed", "events changed"),
    ("items_written", "items written"),
    ("missed_deliveries_recovered", "missed deliveries recovered"),
    ("calendly_requests", "Calendly requests"),
    ("throttled", "throttled (429)"),
)


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
            if check.get("ok") is not True and check.get("required") is False:
                # Not refused for it: the stack works without it, with less (events left out).
                line = f"  {'–' if unicode else 'opt '} {name} (optional)"
            else:
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
        if "made_by_this_stack" in subscription:
            lines.append(_field("made by stack", _yes_no(subscription.get("made_by_this_stack"))))
        if "matches" in subscription:
            lines.append(_field("matches stack", _yes_no(subscription.get("matches"))))
        lines.extend(_list("problems", subscription.get("problems"), indent="  "))
    elif "subscription" in answer:
        lines.append(_field("subscription", "none", indent=""))
    lines.extend(_list("deleted", answer.get("deleted"), indent=""))
    lines.extend(_list("notes", answer.get("notes"), indent=""))
    return "\n".join(lines)


def render_poll_progress(
    answer: Mapping[str, Any],
    *,
    run: int,
    max_runs: int,
    bar: bool = False,
    fraction: float | None = None,
    unicode: bool = True,
) -> str:
    """One line for one PollCalendlyFunction run; with ``bar``, how far a backfill has read."""
    ok, done = answer.get("ok") is True, answer.get("done") is True
    stop = stop_reason(answer)
    state = {STOP_FINISHED: "done", STOP_FAILED: "failed", None: "continuing"}.get(stop, "stopped")
    parts = [f"run {run}/{max_runs}"]
    if bar:
        parts.append(progress_bar(fraction, unicode=unicode))
        end = _text(answer.get("window_end"))[:10]
        if end and not done:
            parts.append(f"to {end}")
    parts.append(f"{_mark(ok, unicode).strip()} {state}:")
    counts = [
        _plural(_count(answer.get("pages")), "page"),
        _plural(_count(answer.get("events_seen")), "event") + " seen",
        f"{_count(answer.get('events_changed'))} changed",
        _plural(_count(answer.get("items_written")), "item") + " written",
        _plural(_count(answer.get("calendly_requests")), "request"),
    ]
    if _count(answer.get("throttled")):
        counts.append(f"{_count(answer.get('throttled'))} throttled")
    if answer.get("resumed") is True:
        counts.append("resumed")
    line = " ".join(parts) + " " + ", ".join(counts)
    message = _text(answer.get("message"))
    return f"{line} ({message})" if message else line


def render_poll_summary(
    answers: Sequence[Mapping[str, Any]],
    *,
    mode: str,
    stop: str | None,
    max_runs: int,
    unicode: bool = True,
) -> str:
    """After the last run: why it stopped, the totals over every run, the last message, notes.

    ``stop`` is one of :mod:`ops.poll`'s ``STOP_*`` reasons, or None when the loop was cut short
    (interrupted, or a run could not be invoked).
    """
    runs = len(answers)
    last: Mapping[str, Any] = answers[-1] if answers else {}
    message = _text(last.get("message"))
    runs_text = _plural(runs, "run")
    if stop == STOP_FINISHED:
        headline = f"{mode} finished after {runs_text}"
    elif stop == STOP_FAILED:
        headline = f"{mode} failed on run {runs}: {message or '(no message)'}"
    elif stop == STOP_LEASE_HELD:
        headline = f"{mode} stopped: another poll run holds the lease; try again later"
    elif stop == STOP_NO_PROGRESS:
        headline = f"{mode} stopped on run {runs}: it read nothing and is not done; try again later"
    elif stop == STOP_MAX_RUNS:
        headline = (
            f"{mode} not finished after {runs_text} (--max-runs {max_runs}); "
            "run it again to continue from the checkpoint"
        )
    else:
        headline = f"{mode} stopped after {runs_text}, before finishing"
    lines = [f"{_mark(stop == STOP_FINISHED, unicode)} {headline}"]

    def field(label: str, value: Any) -> str:
        return _field(label, value, indent="", width=_POLL_LABEL_WIDTH)

    lines.append(field("runs", runs))
    for key, label in POLL_TOTALS:
        lines.append(field(label, sum(_count(answer.get(key)) for answer in answers)))
    lines.append(field("finished", _yes_no(stop == STOP_FINISHED)))
    first: Mapping[str, Any] = answers[0] if answers else {}
    if first.get("window_start") or last.get("window_end"):
        start = _text(first.get("window_start")) or "?"
        end = _text(last.get("window_end")) or "?"
        lines.append(field("window", f"{start} {'→' if unicode else 'to'} {end}"))
    if last.get("subscription"):
        lines.append(field("subscription", last["subscription"]))
    milliseconds = sum(_count(answer.get("duration_ms")) for answer in answers)
    if milliseconds:
        lines.append(field("time in the function", f"{milliseconds / 1000:.1f} s"))
    if message and stop != STOP_FAILED:
        lines.append(field("last message", message))
    notes: list[str] = []
    for answer in answers:
        values = answer.get("notes")
        for note in values if isinstance(values, list | tuple) else [values] if values else []:
            if _text(note) not in notes:
                notes.append(_text(note))
    lines.extend(_list("notes", notes, indent=""))
    return "\n".join(lines)


def progress_bar(fraction: float | None, *, width: int = _BAR_WIDTH, unicode: bool = True) -> str:
    """``[█████░░░░░]  50.0%``; unknown (None) shows an empty bar and ``?``."""
    full, empty = ("█", "░") if unicode else ("#", "-")
    if fraction is None:
        return f"[{empty * width}]      ?"
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * width)
    return f"[{full * filled}{empty * (width - filled)}] {fraction * 100:5.1f}%"


def unicode_ok(encoding: str | None) -> bool:
    """Whether the marks ✓/✗ (and the bar's █/░) can be written in ``encoding`` (else plain ASCII)."""
    try:
        "✓✗█░→".encode(encoding or "ascii")
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


def _field(label: str, value: Any, *, indent: str = "  ", width: int = _LABEL_WIDTH) -> str:
    return f"{indent}{label:<{width - len(indent)}} {_text(value)}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(label: str, values: Any, *, indent: str) -> list[str]:
    if not values:
        return []
    items = values if isinstance(values, list | tuple) else [values]
    return [f"{indent}{label}", *(f"{indent}  - {_text(item)}" for item in items)]
