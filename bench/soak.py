"""Soak: thousands of signed deliveries through the whole local stack, then the table against Calendly.

    python -m bench.soak                              # about 10,000 deliveries
    python -m bench.soak --deliveries 500 --drop 0.1 --poll-every 3

The Calendly sandbox books, cancels, reschedules and marks no-shows (and unmarks them) and
delivers every change to the stack's webhook URL through the local HTTP front (moto's server
as AWS, the real handlers, the stream pump applying deliveries), with 20 % of deliveries sent
twice, all of them held back and shuffled, and optionally some dropped. At the same time a
forger posts about 5 % as many bad deliveries straight to the webhook URL, and
PollCalendlyFunction runs every few seconds as its schedule would. At the end the sandbox is
drained, the stream settles, one last poll runs, and every invitee and scheduled event
Calendly holds is looked up in the table, and the audit log is checked for one record per
distinct delivery.

It prints figures and a verdict ("MISMATCH" when something was lost, duplicated or forged in);
the exit code is 0 whatever it finds: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench import command_line, machine

# The layer is on the import path already: importing the bench package put it there.
from calendly_sync.signature import SIGNATURE_HEADER, sign
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.calendly_sandbox.uris import invitee_reference
from local.copy_check import CopyCheck, Facts, compare, sandbox_facts, table_facts
from local.runner import LocalStackRunner, wait_until

FORGED_SHARE = 0.05
MAX_PENDING = 200  # the story waits while the sandbox has this many deliveries queued or in flight
FORGERY_KINDS = ("wrong key", "stale timestamp", "tampered body", "missing header")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the booking story ------------------------------------------------------------------------


@dataclass
class _Guest:
    active: bool = True
    past: bool = False
    no_show: bool = False


def _is_active(guest: _Guest) -> bool:
    return guest.active


def _can_be_marked(guest: _Guest) -> bool:
    return guest.active and not guest.no_show


def _is_marked(guest: _Guest) -> bool:
    return guest.no_show


@dataclass
class Story:
    """Changes made in Calendly: each is one distinct delivery (a reschedule makes two)."""

    sandbox: CalendlySandbox
    rng: random.Random
    event_types: list[str]
    changes: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0
    _guests: dict[str, _Guest] = field(default_factory=dict)
    _active: list[str] = field(default_factory=list)
    _showable: list[str] = field(default_factory=list)
    _marked: list[str] = field(default_factory=list)

    def step(self) -> None:
        roll = self.rng.random()
        # Cumulative odds: a change with nobody to apply it to falls through to the next, then a booking.
        for odds, pool, eligible, change in (
            (0.12, self._active, _is_active, self._cancel),
            (0.27, self._active, _is_active, self._reschedule),
            (0.45, self._showable, _can_be_marked, self._mark),
            (0.55, self._marked, _is_marked, self._unmark),
        ):
            if roll < odds and (uri := self._pick(pool, eligible)) is not None:
                change(uri)
                return
        self._book()

    def _start(self) -> tuple[datetime, bool]:
        # Inside the poller's window (30 days back, 180 ahead); a third already happened.
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        if self.rng.random() < 1 / 3:
            return now - timedelta(minutes=self.rng.randrange(60, 60 * 24 * 10)), True
        return now + timedelta(minutes=self.rng.randrange(60, 60 * 24 * 60)), False

    def _add(self, uri: str, past: bool) -> None:
        self._guests[uri] = _Guest(past=past)
        self._active.append(uri)
        if past:
            self._showable.append(uri)

    def _book(self) -> None:
        start, past = self._start()
        uri = self.sandbox.book(
            event_type_uri=self.rng.choice(self.event_types),
            start_time=start,
            email=f"guest{len(self._guests)}@example.com",
        )
        self._add(uri, past)
        self._count("booked", 1)

    def _cancel(self, uri: str) -> None:
        self.sandbox.cancel(uri, reason=self.rng.choice(("Plans changed", None)))
        self._guests[uri].active = False
        self._count("canceled", 1)

    def _reschedule(self, uri: str) -> None:
        start, past = self._start()
        new_uri = self.sandbox.reschedule(uri, start)
        self._guests[uri].active = False
        self._add(new_uri, past)
        self._count("rescheduled", 2)

    def _mark(self, uri: str) -> None:
        self.sandbox.mark_no_show(uri)
        self._guests[uri].no_show = True
        self._marked.append(uri)
        self._count("marked no-show", 1)

    def _unmark(self, uri: str) -> None:
        self.sandbox.unmark_no_show(uri)
        guest = self._guests[uri]
        guest.no_show = False
        if guest.active:  # may be marked again later: a new change, a new delivery
            self._showable.append(uri)
        self._count("unmarked no-show", 1)

    def _pick(self, pool: list[str], eligible: Callable[[_Guest], bool]) -> str | None:
        """A random eligible URI, taken out of ``pool``; stale entries are dropped on the way."""
        for _ in range(8):
            if not pool:
                return None
            index = self.rng.randrange(len(pool))
            pool[index], pool[-1] = pool[-1], pool[index]
            uri = pool.pop()
            if eligible(self._guests[uri]):
                return uri
        return None

    def _count(self, what: str, deliveries: int) -> None:
        self.changes[what] += 1
        self.deliveries += deliveries


# --- forgeries ----------------------------------------------------------------------------------


class Forger(threading.Thread):
    """Posts bad deliveries to the webhook URL, keeping pace with the story (about 5 % of it)."""

    def __init__(self, url: str, signing_key: str, sandbox: CalendlySandbox, total: int) -> None:
        super().__init__(name="forger", daemon=True)
        self.url, self.signing_key, self.sandbox, self.total = url, signing_key, sandbox, total
        self.due = 0  # raised by the story as it goes
        self.sent = 0
        self.answers: Counter[tuple[str, int]] = Counter()
        self.errors = 0
        self.stop = threading.Event()
        self.deadline = time.monotonic() + 3600

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False  # loopback only, never a proxy from the environment
        try:
            while self.sent < self.total and time.monotonic() < self.deadline:
                if self.sent >= min(self.due, self.total):
                    if self.stop.is_set():
                        return
                    time.sleep(0.05)
                    continue
                kind = FORGERY_KINDS[self.sent % len(FORGERY_KINDS)]
                body, headers = self._forge(kind)
                self.sent += 1
                try:
                    status = session.post(self.url, data=body, headers=headers, timeout=60).status_code
                except requests.RequestException:
                    self.errors += 1
                    continue
                self.answers[kind, status] += 1
        finally:
            session.close()

    def _forge(self, kind: str) -> tuple[bytes, dict[str, str]]:
        """A harmful body (a genuine envelope made newer and canceled) and the header of ``kind``."""
        attempts = self.sandbox.deliveries
        genuine = attempts[-1] if attempts else None
        if genuine is not None:
            envelope = json.loads(genuine.body)
        else:
            envelope = {
                "event": "invitee.created",
                "created_at": "2026-01-01T00:00:00.000000Z",
                "payload": {},
            }
        payload = envelope.setdefault("payload", {})
        payload["status"] = "canceled"
        payload["email"] = "mallory@example.com"
        payload["updated_at"] = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = json.dumps(envelope, separators=(",", ":")).encode()
        now = int(time.time())
        headers = {"Content-Type": "application/json"}
        if kind == "wrong key":
            headers[SIGNATURE_HEADER] = sign(body, secrets.token_hex(16), now)
        elif kind == "stale timestamp":  # the right key, but signed ten minutes ago
            headers[SIGNATURE_HEADER] = sign(body, self.signing_key, now - 600)
        elif kind == "tampered body" and genuine is not None and genuine.signature:
            headers[SIGNATURE_HEADER] = genuine.signature  # Calendly's own signature, for other bytes
        elif kind == "tampered body":
            headers[SIGNATURE_HEADER] = sign(body + b" ", self.signing_key, now)
        return body, headers

    @property
    def accepted(self) -> int:
        return sum(n for (_, status), n in self.answers.items() if status != 401)


# --- the schedule ---------------------------------------------------------------------------------


class Poller(threading.Thread):
    """Invokes PollCalendlyFunction every ``every`` seconds, as its schedule would."""

    def __init__(self, runner: LocalStackRunner, every: float) -> None:
        super().__init__(name="poller", daemon=True)
        self.runner, self.every = runner, every
        self.stop = threading.Event()
        self.runs = 0
        self.failed = 0
        self.items_written = 0
        self.seconds: list[float] = []
        self.messages: Counter[str] = Counter()

    def run(self) -> None:
        deadline = time.monotonic() + 4 * 3600
        while not self.stop.wait(self.every) and time.monotonic() < deadline:
            self.poll_once()

    def poll_once(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            report: dict[str, Any] = self.runner.invoke_function("PollCalendlyFunction", {"mode": "sync"})
        except Exception as error:  # a benchmark reports it and carries on, as the next schedule would
            report = {"ok": False, "message": f"{type(error).__name__}: {error}"}
        self.seconds.append(time.perf_counter() - started)
        self.runs += 1
        self.items_written += int(report.get("items_written", 0))
        if not report.get("ok"):
            self.failed += 1
            self.messages[str(report.get("message", ""))[:100]] += 1
        return report


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the sandbox sent, from its attempt log."""

    attempts: int = 0
    retries: int = 0
    duplicates: int = 0
    failed: int = 0
    distinct: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # body sha: created, uri, t
    out_of_order: int = 0
    overtaken_same_invitee: int = 0


def sent_by_calendly(sandbox: CalendlySandbox) -> Sent:
    sent = Sent()
    for attempt in sandbox.deliveries:
        sent.attempts += 1
        sent.retries += attempt.attempt > 1
        sent.duplicates += attempt.fault == "duplicate"
        sent.failed += not attempt.ok
        key = _sha(attempt.body)
        arrived = attempt.sent_at if attempt.status_code is not None else float("inf")
        known = sent.distinct.get(key)
        if known is None:
            envelope = json.loads(attempt.body)
            sent.distinct[key] = (envelope["created_at"], attempt.payload_uri or "", arrived)
        elif arrived < known[2]:
            sent.distinct[key] = (known[0], known[1], arrived)
    # In the order Calendly made the changes: did a later change get answered first?
    ordered = sorted(sent.distinct.values())
    earliest_later = float("inf")
    for _, _, arrived in reversed(ordered):
        sent.out_of_order += arrived > earliest_later
        earliest_later = min(earliest_later, arrived)
    per_invitee: dict[str, float] = {}
    for _, uri, arrived in reversed(ordered):
        sent.overtaken_same_invitee += arrived > per_invitee.get(uri, float("inf"))
        per_invitee[uri] = min(per_invitee.get(uri, float("inf")), arrived)
    return sent


@dataclass
class TableView:
    facts: Facts  # the copy of Calendly's invitees and scheduled events
    audit: Counter[str] = field(default_factory=Counter)  # body sha -> records


def read_table(runner: LocalStackRunner) -> TableView:
    copies: list[dict[str, Any]] = []
    audit: Counter[str] = Counter()
    arguments: dict[str, Any] = {
        "TableName": runner.table_name,
        "ProjectionExpression": "entity, #u, #s, no_show, body",
        "ExpressionAttributeNames": {"#s": "status", "#u": "uri"},
    }
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        page = runner.dynamodb.scan(**arguments)
        for item in page["Items"]:
            if item.get("entity", {}).get("S") == "delivery":
                audit[_sha(item.get("body", {}).get("S", "").encode())] += 1
            else:
                copies.append(item)
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return TableView(table_facts(copies), audit)


@dataclass
class Findings:
    """The table against Calendly and the audit log against what Calendly sent."""

    calendly: Facts
    table: TableView
    copy: CopyCheck
    sent: Sent
    forger_accepted: int

    @property
    def unaudited(self) -> list[str]:
        return [k for k in self.sent.distinct if k not in self.table.audit]

    @property
    def foreign(self) -> list[str]:
        """Audit records matching no Calendly delivery: forgeries that got in."""
        return [k for k in self.table.audit if k not in self.sent.distinct]

    @property
    def duplicated(self) -> list[str]:
        return [k for k, n in self.table.audit.items() if n > 1]

    @property
    def forged_accepted(self) -> int:
        return self.forger_accepted + len(self.foreign)


def find(sandbox: CalendlySandbox, runner: LocalStackRunner, forger: Forger) -> Findings:
    calendly = sandbox_facts(sandbox.state)
    table = read_table(runner)
    return Findings(
        calendly, table, compare(calendly, table.facts), sent_by_calendly(sandbox), forger.accepted
    )


# --- the run ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = command_line(
        __doc__,
        [
            ("--deliveries", 10_000, "distinct deliveries (default 10,000)"),
            ("--seed", 11, "random seed for the sandbox and the story"),
            ("--drop", 0.0, "share of deliveries dropped (default 0)"),
            ("--poll-every", 5.0, "seconds between polls (default 5)"),
        ],
    )
    arguments = parser.parse_args(argv)
    if arguments.deliveries < 10 or not 0 <= arguments.drop < 1 or arguments.poll_every <= 0:
        parser.error("--deliveries at least 10, --drop within 0..1 (below 1), --poll-every positive")

    print("calendly-sync soak: Calendly sandbox -> HTTP front -> receiver -> stream -> projector")
    print(machine())
    print(
        f"{arguments.deliveries:,} deliveries, 20 % sent twice, reordered, {arguments.drop:.0%} dropped, "
        f"{FORGED_SHARE:.0%} forged; a poll every {arguments.poll_every:g} s; seed {arguments.seed}\n",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="calendly-soak-"))
    log_path = work / "functions.log"
    keep_log = True
    try:
        keep_log = _soak(arguments, log_path)
    finally:
        if not keep_log:
            shutil.rmtree(work, ignore_errors=True)
    return 0


@dataclass
class Soak:
    """One run's parts and the figures its steps leave for the report."""

    arguments: argparse.Namespace
    sandbox: CalendlySandbox
    runner: LocalStackRunner
    deadline: float  # monotonic
    began: float  # perf_counter
    timings: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # perf_counter when the story began
    delivered_at: float = 0.0  # perf_counter when the sandbox's queue was drained
    answered: int = 0  # HTTP requests the front answered while Calendly was sending
    drained: bool = False
    settled: bool = False
    final_runs: int = 0
    final_items: int = 0
    wall: float = 0.0  # seconds from the start to the end of the comparison

    def left(self, at_least: float) -> float:
        return max(self.deadline - time.monotonic(), at_least)


def _soak(arguments: argparse.Namespace, log_path: Path) -> bool:
    """Runs everything and prints the report; True when something is wrong (keep the log)."""
    began = time.perf_counter()
    config = SandboxConfig(
        seed=arguments.seed,
        rate_limit=100_000,  # the soak is about deliveries; the poller's pacing has its own bench
        delivery_initial_backoff_seconds=0.1,
        delivery_max_backoff_seconds=2.0,
        delivery_retry_window_seconds=900.0,
    )
    deadline = time.monotonic() + 120 + 0.15 * arguments.deliveries
    with (
        CalendlySandbox(config) as sandbox,
        LocalStackRunner(log_path=log_path, calendly_url=sandbox.base_url) as runner,
    ):
        soak = Soak(arguments, sandbox, runner, deadline, began)
        if not _connect(soak):
            return True
        story = Story(sandbox, random.Random(arguments.seed), sorted(sandbox.state.event_types))
        forger = Forger(
            runner.webhook_url, runner.signing_key(), sandbox, round(arguments.deliveries * FORGED_SHARE)
        )
        poller = Poller(runner, arguments.poll_every)
        _tell_the_story(soak, story, forger, poller)
        _drain(soak, forger, poller)
        _last_poll(soak, poller)

        phase = time.perf_counter()
        findings = find(sandbox, runner, forger)
        soak.timings["compare"] = time.perf_counter() - phase
        soak.wall = time.perf_counter() - began

        _report_deliveries(soak, story, findings)
        _report_forgeries(forger, findings)
        _report_copy(soak, findings)
        _report_polls(soak, poller)
        _report_timings(soak, findings)
        return _verdict(soak, findings, forger, poller, log_path)


def _connect(soak: Soak) -> bool:
    """Connect a token, subscribe, and give Calendly event types to book; False if it failed."""
    sandbox, runner = soak.sandbox, soak.runner
    token = sandbox.add_token(TokenSpec(role="owner"))
    verdict = runner.invoke_function("ValidateCredentialsFunction", {"token": token})
    if not verdict.get("valid"):
        print(f"connect failed: {verdict.get('message')}")
        return False
    answer = runner.invoke_function("WebhookSubscriptionFunction", {"action": "ensure"})
    if not answer.get("ok"):
        print(f"subscribe failed: {answer.get('message')}")
        return False
    sandbox.seed(users=3, event_types_per_user=2, scheduled_events=0)
    soak.timings["stack up, connect, subscribe"] = time.perf_counter() - soak.began
    print(f"▸ stack up; connected and subscribed ({soak.timings['stack up, connect, subscribe']:.1f} s)")
    return True


def _tell_the_story(soak: Soak, story: Story, forger: Forger, poller: Poller) -> None:
    """Changes in Calendly, delivered (with faults) as they happen, while forger and poller run."""
    sandbox, runner, total = soak.sandbox, soak.runner, soak.arguments.deliveries
    sandbox.faults.duplicate_deliveries = 0.2
    sandbox.faults.reorder_deliveries = True
    sandbox.faults.drop_deliveries = float(soak.arguments.drop)
    print(f"▸ the story: about {total:,} changes in Calendly, delivered as they happen")
    soak.started = time.perf_counter()
    forger.start()
    poller.start()
    report_every = max(total // 10, 1)
    next_report = report_every
    while story.deliveries < total and time.monotonic() < soak.deadline:
        story.step()
        forger.due = round(story.deliveries * FORGED_SHARE)
        while sandbox.delivery.pending > MAX_PENDING and time.monotonic() < soak.deadline:
            time.sleep(0.01)
        if story.deliveries >= next_report:
            next_report += report_every
            elapsed = time.perf_counter() - soak.started
            print(
                f"    {story.deliveries:6,} changes  {elapsed:6.1f} s  "
                f"answered {sum(runner.responses.values()):6,}  queued {sandbox.delivery.pending:4}  "
                f"polls {poller.runs}",
                flush=True,
            )
    soak.timings["the story (changes made, delivered as they happen)"] = time.perf_counter() - soak.started


def _drain(soak: Soak, forger: Forger, poller: Poller) -> None:
    """Empty the sandbox's queue, let the forger finish, stop the poller, settle the stream."""
    print("▸ drain: the sandbox's queue, the forger, the poller, the stream")
    phase = time.perf_counter()
    soak.drained = soak.sandbox.deliver_pending(timeout=soak.left(60))
    soak.delivered_at = time.perf_counter()
    soak.answered = sum(soak.runner.responses.values())
    forger.due = forger.total
    forger.stop.set()
    forger.join(timeout=soak.left(60))
    poller.stop.set()
    poller.join(timeout=600)
    soak.settled = wait_until(lambda: soak.runner.project() == 0, timeout=300, interval=0.5)
    soak.timings["drain and settle"] = time.perf_counter() - phase
    print(f"    sandbox queue drained: {soak.drained}; stream settled: {soak.settled}")


def _last_poll(soak: Soak, poller: Poller) -> None:
    print("▸ one last poll (until it reports done), then compare with Calendly")
    phase = time.perf_counter()
    before_runs, before_items = poller.runs, poller.items_written
    for _ in range(20):
        last = poller.poll_once()
        if last.get("done") or not last.get("ok"):
            break
    wait_until(lambda: soak.runner.project() == 0, timeout=120, interval=0.5)
    soak.final_runs, soak.final_items = poller.runs - before_runs, poller.items_written - before_items
    soak.timings["last poll"] = time.perf_counter() - phase


# --- the report -------------------------------------------------------------------------------------


def _report_deliveries(soak: Soak, story: Story, findings: Findings) -> None:
    runner, sent = soak.runner, findings.sent
    distinct = len(sent.distinct)
    print("\ndeliveries")
    print(f"    changes made in Calendly   {story.deliveries:7,}  ({_changes(story.changes)})")
    print(
        f"    sent by Calendly           {sent.attempts:7,}  ({sent.duplicates:,} sent twice, "
        f"{sent.retries:,} retries, {sent.failed:,} attempts not answered 2xx)"
    )
    print(
        f"    distinct, sent             {distinct:7,}  ({len(soak.sandbox.dropped_deliveries):,} dropped, "
        "never sent)"
    )
    print(f"    stored                     {runner.statuses['stored']:7,}")
    print(f"    duplicate, absorbed        {runner.statuses['duplicate']:7,}")
    others = {s: n for s, n in runner.responses.items() if s not in (200, 401)}
    print(f"    other answers              {sum(others.values()):7,}  {dict(sorted(others.items())) or ''}")
    print(
        f"    in the audit log           {sum(findings.table.audit.values()):7,}  "
        f"({len(findings.unaudited):,} distinct deliveries without a record, "
        f"{len(findings.duplicated):,} with more than one)"
    )
    print(
        f"    out of order               {sent.out_of_order / max(distinct, 1):7.1%}  answered after a "
        f"change made later; {sent.overtaken_same_invitee / max(distinct, 1):.1%} after a later "
        "change to the same invitee"
    )
    print("    (arrival = when the sandbox had its first answer; senders run 4 at a time)")


def _report_forgeries(forger: Forger, findings: Findings) -> None:
    print("\nforgeries posted to the webhook URL")
    print(f"    attempted                  {forger.sent:7,}  ({forger.errors} got no answer)")
    for kind in FORGERY_KINDS:
        answers = {s: n for (k, s), n in forger.answers.items() if k == kind}
        print(f"      {kind:<24} {sum(answers.values()):7,}  answers {dict(sorted(answers.items()))}")
    print(
        f"    accepted (not 401)         {forger.accepted:7,}  "
        f"(audit records matching no Calendly delivery: {len(findings.foreign)})"
    )


def _report_copy(soak: Soak, findings: Findings) -> None:
    invitees, events = findings.copy.invitees, findings.copy.scheduled_events
    lost = invitees.lost
    print("\nCalendly vs the table")
    print(
        f"    invitees                   {invitees.calendly_count:7,} vs {invitees.table_count:,}  "
        f"(lost {len(lost)}: {len(invitees.missing)} missing, {len(invitees.differing_on('status'))} "
        f"other status, {len(invitees.differing_on('no_show'))} other no-show; "
        f"{len(invitees.extra)} not in Calendly)"
    )
    print(
        f"    scheduled events           {events.calendly_count:7,} vs {events.table_count:,}  "
        f"(lost {len(events.lost)}: missing or other status; {len(events.extra)} not in Calendly)"
    )
    if lost:
        _explain_lost(soak.sandbox, findings, lost)
    print(f"    duplicated deliveries      {len(findings.duplicated):7,}  (more than one audit record)")
    print(f"    projection failures        {len(soak.runner.projection_failures):7,}")


def _explain_lost(sandbox: CalendlySandbox, findings: Findings, lost: tuple[str, ...]) -> None:
    with sandbox.state.lock:
        starts = {uri: sandbox.state.events[_event_uuid(uri)].start_time for uri in lost}
    hit = {d.payload_uri for d in sandbox.dropped_deliveries}
    print(
        f"      {sum(uri in hit for uri in lost)} of them had a delivery dropped "
        "(the poller re-lists an event's invitees when the event changes or ended 1 h, 1 day or "
        "3 days before a run, so a dropped no-show change on another past event stays unseen)"
    )
    print("      for example (Calendly vs the table: status, no-show):")
    for uri in lost[:3]:
        ago = datetime.now(UTC) - starts[uri]
        calendly = _status_and_no_show(findings.calendly.invitees.get(uri))
        table = _status_and_no_show(findings.table.facts.invitees.get(uri))
        print(
            f"      {uri.rsplit('/', 1)[-1]}  {calendly} vs {table}  "
            f"starts {starts[uri]:%Y-%m-%d %H:%M} ({ago.total_seconds() / 3600:+.0f} h ago)"
        )


def _event_uuid(invitee_uri: str) -> str:
    ids = invitee_reference(invitee_uri)
    return ids[0] if ids else ""


def _status_and_no_show(fields: dict[str, object] | None) -> tuple[object, object] | None:
    return None if fields is None else (fields.get("status"), fields.get("no_show"))


def _report_polls(soak: Soak, poller: Poller) -> None:
    print("\npolls")
    during = poller.runs - soak.final_runs
    written = poller.items_written - soak.final_items
    mean = sum(poller.seconds) / max(len(poller.seconds), 1)
    print(
        f"    during the soak            {during:7,}  runs, {written:,} items "
        f"written, {poller.failed} failed; {mean:.1f} s a run on average, "
        f"{max(poller.seconds or [0]):.1f} s at most"
    )
    print(f"    at the end                 {soak.final_runs:7,}  runs, {soak.final_items:,} items written")
    for message, n in poller.messages.most_common(3):
        print(f"      {n} x {message}")


def _report_timings(soak: Soak, findings: Findings) -> None:
    soak_seconds = soak.delivered_at - soak.started
    distinct = len(findings.sent.distinct)
    print("\ntimings")
    for title, seconds in soak.timings.items():
        print(f"    {seconds:8.1f} s  {title}")
    print(f"    {soak.wall:8.1f} s  in all")
    print(
        f"    {soak.answered / max(soak_seconds, 1e-9):8.1f}    HTTP requests answered per second by the "
        f"front during the story and drain ({soak.answered:,} in {soak_seconds:.1f} s)"
    )
    print(f"    {distinct / max(soak_seconds, 1e-9):8.1f}    distinct deliveries per second")


def _verdict(soak: Soak, findings: Findings, forger: Forger, poller: Poller, log_path: Path) -> bool:
    """Prints RESULT or MISMATCH; True when something is wrong."""
    invitees, events = findings.copy.invitees, findings.copy.scheduled_events
    problems = []
    if invitees.lost or events.lost:
        problems.append(f"{len(invitees.lost)} invitees and {len(events.lost)} events lost")
    if findings.forged_accepted:
        problems.append(f"{findings.forged_accepted} forged deliveries accepted")
    if findings.duplicated:
        problems.append(f"{len(findings.duplicated)} deliveries with more than one audit record")
    if findings.unaudited:
        problems.append(f"{len(findings.unaudited)} deliveries sent but not in the audit log")
    if soak.runner.projection_failures:
        problems.append(f"{len(soak.runner.projection_failures)} projection failures")
    if not soak.drained or not soak.settled:
        problems.append("the run did not settle before its deadline")
    if problems:
        print(f"\nfunction logs kept in {log_path}")
        print("\nMISMATCH: " + "; ".join(problems))
        return True
    print(
        f"\nRESULT: the table matches Calendly after {len(findings.sent.distinct):,} distinct deliveries "
        f"({findings.sent.attempts:,} sent), {forger.sent:,} forgeries refused, {poller.runs} polls"
    )
    return False


def _changes(changes: Counter[str]) -> str:
    return ", ".join(f"{n:,} {what}" for what, n in sorted(changes.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    raise SystemExit(main())
