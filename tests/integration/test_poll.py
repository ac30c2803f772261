"""PollCalendlyFunction against the Calendly sandbox: the table converges to Calendly's truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from calendly_sync.table_items import invitee_key, parse_invitee_uri, scheduled_event_key
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler
from tests.conftest import LocalAws, calendly_invitee_statuses

NOW = datetime.now(UTC)


def connect(calendly: CalendlySandbox, **spec: Any) -> str:
    token = calendly.add_token(TokenSpec(role="owner", **spec))
    answer = load_handler("ValidateCredentialsFunction")({"token": token}, FakeLambdaContext())
    assert answer["valid"] is True
    return token


class Budget(FakeLambdaContext):
    """A Lambda context whose time runs out after ``pages`` event-list pages or ``requests`` calls."""

    def __init__(
        self, calendly: CalendlySandbox, pages: int | None = None, requests: int | None = None
    ) -> None:
        super().__init__(function_name="PollCalendlyFunction", timeout_seconds=300)
        self._calendly = calendly
        self._pages = None if pages is None else self._pages_read() + pages
        self._requests = None if requests is None else len(calendly.request_log) + requests

    def _pages_read(self) -> int:
        return sum(1 for r in self._calendly.request_log if r.path == "/scheduled_events")

    def get_remaining_time_in_millis(self) -> int:
        spent = (self._pages is not None and self._pages_read() >= self._pages) or (
            self._requests is not None and len(self._calendly.request_log) >= self._requests
        )
        return 1_000 if spent else 300_000


def poll(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("PollCalendlyFunction")(
        event if event is not None else {"mode": "sync"},
        context or FakeLambdaContext(function_name="PollCalendlyFunction", timeout_seconds=300),
    )
    return answer


def assert_every_stored_event_has_its_invitees(aws: LocalAws, calendly: CalendlySandbox) -> None:
    """An event item in the table is complete: each of its invitees Calendly holds is stored too."""
    items = aws.all_items()
    stored_events = {i["pk"]["S"] for i in items if i["entity"]["S"] == "scheduled_event"}
    stored_invitees = {
        (i["pk"]["S"], i["sk"]["S"]) for i in items if i["entity"]["S"] == "invitee" and "status" in i
    }
    with calendly.state.lock:
        expected = {
            (f"EVENT#{event.uuid}", f"INVITEE#{invitee_uuid}")
            for event in calendly.state.events.values()
            for invitee_uuid in event.invitee_uuids
        }
    missing = {key for key in expected if key[0] in stored_events} - stored_invitees
    assert not missing, f"{len(missing)} invitees missing under stored events"


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The metrics documents (EMF) the handlers printed since the last call."""
    documents = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def poll_until_done(event: dict[str, Any] | None = None, runs: int = 6) -> list[dict[str, Any]]:
    answers = [poll(event)]
    while not (answers[-1]["ok"] and answers[-1]["done"]) and len(answers) < runs:
        answers.append(poll(event))
    return answers


def entity_items(aws: LocalAws) -> dict[str, str]:
    return {
        f"{i['pk']['S']}/{i['sk']['S']}": i.get("version", {}).get("S", "")
        for i in aws.all_items()
        if i["entity"]["S"] not in ("sync_state", "delivery")
    }


def seed(calendly: CalendlySandbox, events: int, *, start: datetime | None = None, days: int = 20) -> None:
    calendly.seed(
        users=3,
        event_types_per_user=2,
        scheduled_events=events,
        start=start or NOW - timedelta(days=5),
        days=days,
    )


def test_a_first_sync_fills_the_table(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given an organization with 250 scheduled events (three pages) and no webhook ever received
    seed(calendly, 250)
    connect(calendly)

    # When the poller runs
    report = poll()

    # Then every event and invitee is in the table, matching Calendly
    assert report["ok"] is True and report["done"] is True
    assert report["events_seen"] == 250 and report["events_changed"] == 250 and report["pages"] == 3
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    assert report["event_types_seen"] == 6 and report["members_seen"] >= 3


def test_an_unchanged_resync_reads_pages_only_and_writes_nothing(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 250)
    connect(calendly)
    poll()
    before = entity_items(aws)
    calendly.reset_counts()

    report = poll()

    # Then no invitee list is fetched and no resource item is written
    assert report["events_changed"] == 0 and report["items_written"] == 0 and report["invitee_lists"] == 0
    assert calendly.requests_count(path_prefix="/scheduled_events/") == 0
    assert entity_items(aws) == before


def test_a_cancellation_made_while_webhooks_failed_is_picked_up(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced table, and then changes Calendly never delivered (no working webhook)
    seed(calendly, 40)
    connect(calendly)
    poll()
    invitee = calendly.book(start_time=NOW + timedelta(days=3))
    victim = next(
        uri
        for uri, status in calendly_invitee_statuses(calendly).items()
        if status == "active" and uri != invitee
    )
    calendly.cancel(victim)

    # When the poller runs again
    report = poll()

    # Then the cancellation and the new booking are in the table, counted as recovered
    assert aws.invitee_statuses()[victim] == "canceled" and aws.invitee_statuses()[invitee] == "active"
    assert report["missed_deliveries_recovered"] >= 3  # the canceled invitee and its event, the new booking
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_a_run_cut_off_part_way_resumes_from_its_position_and_ends_as_one_run_would(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given 350 events (four pages) and a run whose time runs out after 150 Calendly requests
    seed(calendly, 350)
    connect(calendly)
    first = poll(context=Budget(calendly, requests=150))
    assert first["done"] is False and 0 < first["events_changed"] < 350

    # When the next run starts
    second = poll()

    # Then it resumed from the saved position, listed only the rest, and the table matches Calendly
    left = 350 - first["events_changed"]
    assert second["resumed"] is True and second["done"] is True
    assert second["pages"] <= -(-left // 100) + 1  # the rest's pages, and at most one more
    assert first["events_changed"] + second["events_changed"] == 350
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    assert_every_stored_event_has_its_invitees(aws, calendly)


def test_429_bursts_and_5xx_are_survived_within_the_retry_cap(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 120)
    connect(calendly)
    # Given Calendly answers the next two requests 429 and the two after that 500
    calendly.faults.rate_limit_burst_429 = 2
    calendly.faults.server_errors = 2

    report = poll()

    # Then the run waits and retries within its cap (5 attempts) and completes
    assert report["ok"] is True and report["done"] is True
    assert report["throttled"] == 2 and report["retries"] == 4
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_an_outage_beyond_the_retry_cap_fails_the_run_cleanly(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 120)
    connect(calendly)
    calendly.faults.server_errors = 50

    report = poll()

    assert report["ok"] is False and "500" in report["message"]
    # The subscription check's call: five attempts, then it is reported and the sync goes on;
    # the sync's first call: five attempts, then the run gives up
    assert report["subscription"] == "check-failed" and report["calendly_requests"] == 10
    calendly.faults.server_errors = 0
    assert poll()["done"] is True
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_pacing_keeps_a_tight_rate_limit_free_of_429s(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from calendly_sync.settings import get_settings
    from local.calendly_sandbox import SandboxConfig

    # Given a Calendly that allows only 20 requests per 2 s
    with CalendlySandbox(SandboxConfig(seed=9, rate_limit=20, rate_window_seconds=2)) as tight:
        monkeypatch.setenv("CALENDLY_API_BASE_URL", tight.base_url)
        get_settings.cache_clear()
        seed(tight, 60)
        connect(tight)

        # When a first sync needs about 70 requests
        report = poll()

    # Then it waits for the window instead of meeting 429s
    assert report["ok"] is True and report["done"] is True and report["throttled"] == 0
    assert report["calendly_requests"] > 20


def test_a_disabled_subscription_is_recreated_and_its_gap_re_read(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced stack whose subscription Calendly disabled after failing deliveries
    seed(calendly, 30)
    connect(calendly)
    load_handler("WebhookSubscriptionFunction")({"action": "ensure"}, FakeLambdaContext())
    poll()
    (subscription,) = calendly.subscriptions()
    victim = next(uri for uri, status in calendly_invitee_statuses(calendly).items() if status == "active")
    calendly.cancel(victim)
    calendly.disable_subscription(subscription["uri"])

    # When the poller runs
    report = poll()

    # Then the subscription was replaced, and the change made during the gap is in the table
    assert report["subscription"] == "replaced"
    assert any("re-reading since" in note for note in report["notes"])
    (current,) = calendly.subscriptions()
    assert current["state"] == "active" and current["uri"] != subscription["uri"]
    assert aws.invitee_statuses()[victim] == "canceled"


def test_a_backfill_reads_history_in_chunks_and_resumes(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given 150 events a year ago, outside the sync window
    seed(calendly, 150, start=NOW - timedelta(days=400), days=60)
    connect(calendly)
    assert poll()["events_seen"] == 0

    # When a backfill since then is cut off after one page, then run again
    since = (NOW - timedelta(days=410)).strftime("%Y-%m-%d")
    first = poll({"mode": "backfill", "since": since}, Budget(calendly, pages=1))
    rest = poll({"mode": "backfill", "since": since})
    again = poll({"mode": "backfill", "since": since})

    # Then the history is complete, the second run resumed, and a third has nothing to do
    assert first["done"] is False and rest["resumed"] is True and rest["done"] is True
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    assert again["done"] is True and "already complete" in again["message"]


def test_a_backfill_without_a_date_is_refused_clearly(aws: LocalAws, calendly: CalendlySandbox) -> None:
    answer = poll({"mode": "backfill", "since": "last tuesday"})
    assert answer["ok"] is False and "since" in answer["message"]


def test_two_runs_at_once_one_works_one_exits(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given another run holds the lease
    seed(calendly, 10)
    connect(calendly)
    assert aws.table.claim_lease("poll", "someone-else", int(datetime.now(UTC).timestamp()), 300)

    # When a run starts, then it stops at once without touching Calendly's events
    calendly.reset_counts()
    report = poll()
    assert "another poll run is in progress" in report["message"] and report["pages"] == 0
    assert calendly.requests_count(path_prefix="/scheduled_events") == 0


def test_a_401_re_reads_the_token_once_then_fails_clearly(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given the stored token was revoked, and a new one put in place by another process
    seed(calendly, 10)
    old = connect(calendly)
    poll()  # warm: the old token is cached
    new = calendly.add_token(TokenSpec(role="owner"))
    aws.secretsmanager.put_secret_value(
        SecretId=aws.token_secret_arn, SecretString=json.dumps({"token": new})
    )
    calendly.set_token_state(old, "revoked")

    # Then the run re-reads the secret and succeeds with the new token
    assert poll()["ok"] is True

    # And when the new one is revoked too, the run fails with a message saying what to do
    calendly.set_token_state(new, "revoked")
    report = poll()
    assert report["ok"] is False and "connect again" in report["message"]


def test_without_a_token_the_poller_says_to_connect(aws: LocalAws, calendly: CalendlySandbox) -> None:
    report = poll()
    assert report["ok"] is False and "connect first" in report["message"]


def test_the_poll_writes_what_webhooks_write(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given one booking, polled
    connect(calendly)
    uri = calendly.book(start_time=NOW + timedelta(days=1))
    poll()
    event_uuid, invitee_uuid = parse_invitee_uri(uri)  # type: ignore[misc]

    # Then its items have the same shape as the webhook path's (same records code)
    invitee = aws.table.get(invitee_key(event_uuid, invitee_uuid))
    event = aws.table.get(scheduled_event_key(event_uuid))
    assert invitee is not None and event is not None
    assert {"entity", "status", "version", "raw", "gsi2pk"} <= set(invitee)
    assert {"entity", "start_time", "version", "raw", "gsi1pk"} <= set(event)


def test_slow_responses_time_out_and_are_retried(aws: LocalAws, calendly: CalendlySandbox) -> None:
    import threading

    from calendly_sync.adapters.secrets import TokenSecret
    from calendly_sync.poll_dependencies import CalendlyClients, PollDependencies
    from calendly_sync.poller import poll as run_poll
    from calendly_sync.settings import get_settings

    # Given Calendly answers slower than the client waits, for a while, and a poller whose
    # clients wait 1 s to connect and 0.3 s to read (passed in, as the handler passes its own)
    seed(calendly, 30)
    connect(calendly)
    settings = get_settings()
    dependencies = PollDependencies(
        settings=settings,
        table=aws.table,
        calendly=CalendlyClients(settings.calendly_api_base_url, timeout=(1.0, 0.3)),
        stored_token=TokenSecret(settings.token_secret_id).stored_token,
        check_subscription=None,  # the sync's own reads are the ones timing out here
    )
    calendly.faults.latency_seconds = 0.6
    recovery = threading.Timer(1.0, lambda: setattr(calendly.faults, "latency_seconds", 0.0))
    recovery.start()

    # When the poller runs, then the timed-out calls are retried with back-off and the run completes
    context = FakeLambdaContext(function_name="PollCalendlyFunction", timeout_seconds=300)
    try:
        report = run_poll({"mode": "sync"}, context.get_remaining_time_in_millis, dependencies)
    finally:
        recovery.cancel()
    assert report["ok"] is True and report["done"] is True and report["retries"] >= 1
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_a_backfill_puts_right_a_no_show_that_no_event_change_revealed(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced past booking whose no-show mark was never delivered, outside the re-check times
    connect(calendly)
    uri = calendly.book(start_time=NOW - timedelta(days=10))
    poll()
    calendly.mark_no_show(uri)
    assert poll()["invitee_lists"] == 0  # a sync cannot see it: the event did not change

    # When a backfill re-reads that period
    report = poll({"mode": "backfill", "since": (NOW - timedelta(days=11)).isoformat()})

    # Then the no-show is in the table
    event_uuid, invitee_uuid = parse_invitee_uri(uri)  # type: ignore[misc]
    stored_invitee = aws.table.get(invitee_key(event_uuid, invitee_uuid))
    assert report["done"] is True and stored_invitee is not None and stored_invitee.get("no_show")


# --- issue 9: page tokens go stale, commit order, crashes, the subscription check, member tokens ---


@pytest.fixture
def expiring(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CalendlySandbox]]:
    """A sandbox whose page tokens go stale after ``ttl`` seconds, as the functions' Calendly."""
    from calendly_sync.settings import get_settings
    from local.calendly_sandbox import SandboxConfig

    opened: list[CalendlySandbox] = []

    def start(ttl: float) -> CalendlySandbox:
        sandbox = CalendlySandbox(SandboxConfig(seed=5, rate_window_seconds=2, page_token_ttl_seconds=ttl))
        sandbox.start()
        opened.append(sandbox)
        monkeypatch.setenv("CALENDLY_API_BASE_URL", sandbox.base_url)
        get_settings.cache_clear()
        return sandbox

    yield start
    for sandbox in opened:
        sandbox.stop()


def test_tokens_that_go_stale_between_invitee_lists_no_longer_stop_a_first_sync(
    aws: LocalAws, expiring: Callable[..., CalendlySandbox]
) -> None:
    # Given 600 events, page tokens that live 1 s, and 10 ms per Calendly request: listing a
    # page's 100 invitees between two pages takes longer than a token lives
    calendly = expiring(1.0)
    seed(calendly, 600)
    connect(calendly)
    calendly.faults.latency_seconds = 0.01

    # When the poller runs
    answers = poll_until_done()

    # Then the first run completes the sync, and the table matches Calendly
    assert [a["ok"] for a in answers] == [True] and answers[0]["done"] is True
    assert answers[0]["events_changed"] == 600
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_with_every_token_stale_at_once_the_window_is_read_page_by_page_from_its_position(
    aws: LocalAws, expiring: Callable[..., CalendlySandbox]
) -> None:
    # Given page tokens that are stale by the time they come back (a worst case)
    calendly = expiring(0.000_001)
    seed(calendly, 250)
    connect(calendly)

    # When the poller runs
    report = poll()

    # Then each refused token restarts the listing from the position reached, and the sync completes
    assert report["ok"] is True and report["done"] is True, report["message"]
    assert report["page_token_restarts"] >= 2
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    checkpoint = aws.table.checkpoint("sync") or {}
    assert "page_token" not in checkpoint and checkpoint.get("completed_at")


def test_more_than_a_page_at_one_start_time_is_read_through_across_a_cut_off(
    aws: LocalAws, expiring: Callable[..., CalendlySandbox]
) -> None:
    # Given 230 bookings that all start at the same minute (three pages of one start time)
    calendly = expiring(1.0)
    connect(calendly)
    moment = (NOW + timedelta(days=2)).replace(second=0, microsecond=0)
    for _ in range(230):
        calendly.book(start_time=moment)

    # When a run is cut off part way through them, and the next runs go on
    first = poll(context=Budget(calendly, requests=120))
    answers = poll_until_done()

    # Then the position (that start time) holds, the next run reads past the tie, and nothing loops
    assert first["done"] is False
    saved = aws.table.checkpoint("sync") or {}
    assert len(answers) == 1 and answers[0]["done"] is True
    assert first["events_changed"] + answers[0]["events_changed"] == 230
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    assert "page_token" not in saved


def test_a_tie_longer_than_a_page_with_tokens_always_stale_fails_clearly_instead_of_looping(
    aws: LocalAws, expiring: Callable[..., CalendlySandbox]
) -> None:
    # Given 150 bookings at one start time, and tokens that are stale before they can be used
    calendly = expiring(0.000_001)
    connect(calendly)
    moment = (NOW + timedelta(days=2)).replace(second=0, microsecond=0)
    for _ in range(150):
        calendly.book(start_time=moment)
    calendly.reset_counts()

    # When the poller runs
    report = poll()

    # Then it stops after a few listings that got nowhere, failed and saying why; the first page landed
    assert report["ok"] is False and "page token" in report["message"]
    assert calendly.requests_count(path_prefix="/scheduled_events") <= 100 + 10
    assert report["events_changed"] == 100
    assert_every_stored_event_has_its_invitees(aws, calendly)


@pytest.mark.parametrize(
    ("kind", "ordinal"), [("INVITEE#", 1), ("INVITEE#", 7), ("INVITEE#", 30), ("EVENT", 1), ("EVENT", 12)]
)
def test_a_failed_write_never_leaves_an_event_that_looks_done(
    aws: LocalAws, calendly: CalendlySandbox, kind: str, ordinal: int
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from calendly_sync.adapters.aws_clients import dynamodb_client

    # Given DynamoDB refusing one item's write for good (every retry of it): the n-th invitee
    # item, or the n-th scheduled event item, that the run writes
    seed(calendly, 40)
    connect(calendly)
    keys: list[str] = []

    def refuse(request: Any, event_name: str, **_: Any) -> None:
        if not event_name.endswith("UpdateItem"):
            return
        key = json.loads(request.body)["Key"]
        if not key["pk"]["S"].startswith("EVENT#") or not key["sk"]["S"].startswith(kind):
            return
        text = json.dumps(key, sort_keys=True)
        if text not in keys:
            keys.append(text)
        if keys.index(text) == ordinal - 1:
            raise EndpointConnectionError(endpoint_url=request.url)

    client = dynamodb_client()
    client.meta.events.register_first("before-send.dynamodb", refuse)
    try:
        failed = poll()
    finally:
        client.meta.events.unregister("before-send.dynamodb", refuse)

    # Then the run failed, and no stored event lacks an invitee; the next run completes the table
    assert failed["ok"] is False and "DynamoDB" in failed["message"]
    assert_every_stored_event_has_its_invitees(aws, calendly)
    recovered = poll()
    assert recovered["ok"] is True and recovered["done"] is True
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()
    assert_every_stored_event_has_its_invitees(aws, calendly)


@pytest.mark.parametrize(
    ("case", "body", "headers"),
    [
        ("a list", b"[]", {}),
        ("null", b"null", {}),
        ("an empty body", b"", {}),
        ("a collection of null", b'{"collection": [null], "pagination": {"next_page_token": null}}', {}),
        ("no pagination", b'{"collection": []}', {}),
        (
            "an out-of-range timestamp",
            b'{"collection": [{"uri": "https://api.calendly.com/scheduled_events/e1",'
            b' "start_time": "9999-12-31T23:59:59.000000-23:59", "updated_at": "9999-12-31T23:59:59-23:59"}],'
            b' "pagination": {"next_page_token": null}}',
            {},
        ),
        ("a rate-limit reset of nan", None, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "nan"}),
        ("a rate-limit reset of -5", None, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "-5"}),
    ],
)
def test_an_answer_the_poller_cannot_use_is_a_failed_run_and_the_next_run_completes(
    aws: LocalAws,
    calendly: CalendlySandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    import requests

    # Given Calendly answers the second event-list call of a run with a 200 the poller cannot use
    seed(calendly, 150)
    connect(calendly)
    real_send = requests.Session.send
    calls = {"event lists": 0}

    def send(
        session: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = real_send(session, prepared, **kwargs)
        if (prepared.path_url or "").split("?")[0].endswith("/scheduled_events"):
            calls["event lists"] += 1
            if calls["event lists"] == 2:
                if body is not None:
                    response._content = body
                    response.headers["Content-Length"] = str(len(body))
                response.headers.update(headers)
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    capsys.readouterr()

    # When the poller runs
    report = poll()

    # Then the run is never a crash that reports success: it fails, counted, or it read everything
    failed_metric = [doc["PollRunsFailed"] for doc in emitted_metrics(capsys) if "PollRunsFailed" in doc]
    assert failed_metric == [[0.0 if report["ok"] else 1.0]], case
    if report["ok"]:
        copy = aws.copy_of(calendly)
        assert report["done"] is True and copy.matches, (case, copy.summary())
    else:
        assert report["message"], case

    # And once Calendly answers properly again, the next run completes the table
    monkeypatch.setattr(requests.Session, "send", real_send)
    assert poll_until_done()[-1]["done"] is True
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_a_failing_subscription_check_is_counted_and_the_sync_goes_on(
    aws: LocalAws, calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a token that may read events but not webhooks (Calendly refuses the subscription check)
    seed(calendly, 120)
    reading_only = calendly.add_token(
        TokenSpec(
            role="owner",
            scopes=frozenset(
                {"users:read", "organizations:read", "event_types:read", "scheduled_events:read"}
            ),
        )
    )
    aws.secretsmanager.put_secret_value(
        SecretId=aws.token_secret_arn, SecretString=json.dumps({"token": reading_only})
    )
    capsys.readouterr()

    # When the poller runs
    report = poll()

    # Then the check's failure is reported and counted, and the sync completed all the same
    assert report["ok"] is True and report["done"] is True
    assert report["subscription"] == "check-failed"
    assert any("subscription check failed" in note for note in report["notes"])
    emitted = [doc for doc in emitted_metrics(capsys) if "SubscriptionCheckFailures" in doc]
    assert [doc["SubscriptionCheckFailures"] for doc in emitted] == [[1.0]]
    assert emitted[0]["Mode"] == "sync"
    copy = aws.copy_of(calendly)
    assert copy.matches, copy.summary()


def test_a_member_token_names_the_organization_on_every_list(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    # Given a member (role user) of the organization connected, who hosts events of their own
    seed(calendly, 60)
    with calendly.state.lock:
        host_uuid = next(iter(calendly.state.events.values())).host_uuid
        own_events = sum(1 for e in calendly.state.events.values() if e.host_uuid == host_uuid)
    member = calendly.add_token(TokenSpec(user=calendly.state.uris.user(host_uuid)))
    assert load_handler("ValidateCredentialsFunction")({"token": member}, FakeLambdaContext())["valid"]
    lists: list[dict[str, list[str]]] = []
    real_send = requests.Session.send

    def send(
        session: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        path = (prepared.path_url or "").split("?")[0]
        if path.endswith(("/scheduled_events", "/event_types")):
            lists.append(parse_qs(urlsplit(prepared.url or "").query))
        return real_send(session, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)

    # When the poller runs
    report = poll()

    # Then every list it made named the organization and the user, and the member's bookings are in
    assert report["ok"] is True and report["done"] is True and report["events_seen"] == own_events
    assert lists and all(
        query.get("organization") == [calendly.organization_uri]
        and query.get("user") == [calendly.user_uri_for(member)]
        for query in lists
    )
