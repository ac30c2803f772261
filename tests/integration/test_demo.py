"""`make demo` itself: both of its modes run to completion, say the copy matches, and show
what a consumer of the event bus and the forward URL received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local import demo
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec


def test_the_sandbox_demo_ends_with_a_matching_copy(capsys: pytest.CaptureFixture[str]) -> None:
    # When the demo runs with a small story and some forgeries
    exit_code = demo.main(["--bookings", "8", "--forged", "2", "--duplicates", "0.5"])

    # Then it exits 0, every forgery was refused, and the table matches Calendly
    output = capsys.readouterr().out
    assert exit_code == 0
    assert "4 of 4 refused with 401" in output
    assert "0 differ" in output and "RESULT: the copy in DynamoDB matches Calendly" in output
    # And the consumer got one event per change made (8 bookings: 1 canceled, 1 rescheduled, 1
    # no-show; the seeded event types found by the poll), none for duplicates or forgeries
    consumer = output.split("what a consumer received", 1)[1].split("forwarded to the flow URL", 1)[0]
    # each row: detail-type, made in Calendly, received, by webhook, by poll
    rows = {cells[0]: cells[1:] for cells in map(str.split, consumer.splitlines()) if len(cells) == 5}
    assert rows["invitee.created"][:2] == ["9", "9"] and rows["invitee.canceled"][:2] == ["2", "2"]
    assert rows["invitee_no_show.created"][:2] == ["1", "1"]
    assert rows["event_type.created"][0] == rows["event_type.created"][1] == rows["event_type.created"][3]
    assert "(0 repeated)" in consumer and "forged or stale: 0 events" in consumer
    # And the flow URL accepted each of them with the header, nothing dead-lettered
    forwarded = output.split("forwarded to the flow URL", 1)[1]
    total = int(consumer.split(" events,", 1)[0].split()[-1])
    assert f"accepted (2xx)      {total:5d}" in forwarded and "dead-lettered           0" in forwarded
    assert "RESULT: one event per change reached the consumer and the flow URL" in output


def test_pointed_at_a_calendly_url_it_copies_that_account(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Calendly (the sandbox, reached only by URL and token) holding 30 scheduled events
    with CalendlySandbox(SandboxConfig(seed=3)) as calendly:
        token = calendly.add_token(TokenSpec(role="admin"))
        now = datetime.now(UTC)
        calendly.seed(
            users=2, event_types_per_user=1, scheduled_events=30, start=now - timedelta(days=5), days=10
        )
        monkeypatch.setenv("CALENDLY_TOKEN", token)

        # When the runner is pointed at it
        exit_code = demo.main(
            ["--calendly-url", calendly.base_url, "--days-back", "10", "--days-ahead", "10"]
        )

    # Then it connects, copies every event with its invitees, and shows them
    output = capsys.readouterr().out
    assert exit_code == 0
    assert "token valid: Connection Saved Successfully!" in output
    assert "run 1: 30 events in 1 pages" in output and "the table: 30 scheduled events" in output
    # And a consumer of the bus got what the poller found (origin poll), one event per invitee at least
    received = int(output.split("a consumer received ", 1)[1].split(" events", 1)[0])
    assert received >= 30 and "'poll'" in output
    assert token not in output


def test_without_a_token_the_real_account_mode_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALENDLY_TOKEN", raising=False)
    assert demo.main(["--calendly-url", "http://127.0.0.1:9"]) == 2
    assert "set CALENDLY_TOKEN" in capsys.readouterr().err
