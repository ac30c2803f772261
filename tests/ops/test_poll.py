"""``sync`` and ``backfill`` against a fake invoker: the loop, its exit codes, progress and summary."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops import OpsError
from ops.cli import main
from ops.poll import backfill_fraction, parse_since
from ops.render import render_poll_progress, render_poll_summary
from tests.ops.helpers import TOKEN, FakeInvoker, Terminal, Unreadable, poll_answer

POLL = "PollCalendlyFunction"
LEASE_HELD = "another poll run is in progress: this one stopped at once"
DEADLINE = "stopped before the deadline; the next run resumes from the checkpoint"


@pytest.fixture(autouse=True)
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Unreadable())


def cut_off(**changes: Any) -> dict[str, Any]:
    """A run that reached its deadline: ok, not done, resumable."""
    return poll_answer(**({"done": False, "message": DEADLINE, "pages": 2} | changes))


def summary_totals(out: str) -> dict[str, str]:
    """The summary's ``label   value`` lines, as label -> value."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.fullmatch(r"(\S.*?)\s{2,}(\S.*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def percentages(out: str) -> list[float]:
    return [float(value) for value in re.findall(r"(\d+\.\d)%", out)]


# --- sync ------------------------------------------------------------------------------------


def test_sync_sends_sync_and_stops_when_done(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a poll function that finishes in one run
    invoker = FakeInvoker({POLL: [poll_answer(message="sync complete")]})

    # When sync runs
    code = main(["sync"], invoker=invoker)

    # Then one call with mode sync was made and the summary says finished
    assert invoker.calls == [(POLL, {"mode": "sync"})]
    assert code == 0
    out = capsys.readouterr().out
    assert "sync finished after 1 run" in out
    totals = summary_totals(out)
    assert totals["runs"] == "1" and totals["finished"] == "yes" and totals["events seen"] == "250"
    assert totals["last message"] == "sync complete"


def test_sync_resumes_across_runs_and_sums_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    # Given two runs cut off at their deadline, then one that finishes
    script = [
        cut_off(events_seen=200, events_changed=200, items_written=600, calendly_requests=30, throttled=2),
        cut_off(resumed=True, events_seen=200, events_changed=150, items_written=450, calendly_requests=25),
        poll_answer(
            resumed=True,
            events_seen=50,
            events_changed=10,
            items_written=30,
            missed_deliveries_recovered=4,
            calendly_requests=5,
            throttled=0,
            notes=["webhook subscription was replaced; re-reading since 2026-01-01"],
        ),
    ]
    invoker = FakeInvoker({POLL: script})

    # When sync runs
    code = main(["sync"], invoker=invoker)

    # Then it invoked three times, printed a line per run, and the summary adds up every run
    assert [payload for _, payload in invoker.calls] == [{"mode": "sync"}] * 3
    assert code == 0
    out = capsys.readouterr().out
    assert [line.split(" ")[1] for line in out.splitlines() if line.startswith("run ")] == [
        "1/20",
        "2/20",
        "3/20",
    ]
    totals = summary_totals(out)
    assert totals["runs"] == "3"
    assert totals["events seen"] == "450" and totals["events changed"] == "360"
    assert totals["items written"] == "1080" and totals["missed deliveries recovered"] == "8"
    assert totals["Calendly requests"] == "60" and totals["throttled (429)"] == "3"
    assert totals["finished"] == "yes"
    assert "re-reading since 2026-01-01" in out


def test_an_answer_with_ok_false_stops_at_once_with_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a second run that fails (a third would succeed, but must not be made)
    failed = cut_off(ok=False, message="GET /scheduled_events answered 500 five times")
    invoker = FakeInvoker({POLL: [cut_off(), failed, poll_answer()]})

    # When sync runs
    code = main(["sync"], invoker=invoker)

    # Then it stopped after the failure, exit 1, with the function's message in the headline
    assert len(invoker.calls) == 2
    assert code == 1
    out = capsys.readouterr().out
    assert "sync failed on run 2: GET /scheduled_events answered 500 five times" in out
    assert summary_totals(out)["finished"] == "no"


def test_reaching_max_runs_without_done_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a function that is never done
    invoker = FakeInvoker({POLL: [cut_off()]})

    # When sync runs with --max-runs 3
    code = main(["sync", "--max-runs", "3"], invoker=invoker)

    # Then exactly three runs were made and the summary says how to continue
    assert len(invoker.calls) == 3
    assert code == 1
    out = capsys.readouterr().out
    assert "not finished after 3 runs (--max-runs 3)" in out and "run it again" in out
    assert summary_totals(out)["runs"] == "3"


def test_the_default_max_runs_is_twenty() -> None:
    invoker = FakeInvoker({POLL: [cut_off()]})
    assert main(["sync"], invoker=invoker) == 1
    assert len(invoker.calls) == 20


def test_a_held_lease_stops_the_loop_instead_of_spinning(capsys: pytest.CaptureFixture[str]) -> None:
    # Given another poll run holds the lease (the function answers ok, not done, no pages)
    held = poll_answer(done=False, pages=0, events_seen=0, message=LEASE_HELD)
    invoker = FakeInvoker({POLL: [held]})

    # When sync runs
    code = main(["sync"], invoker=invoker)

    # Then it stopped after one call and says to try again later
    assert len(invoker.calls) == 1
    assert code == 1
    out = capsys.readouterr().out
    assert "another poll run holds the lease; try again later" in out


def test_a_run_that_reads_nothing_and_is_not_done_stops_too(capsys: pytest.CaptureFixture[str]) -> None:
    invoker = FakeInvoker({POLL: [poll_answer(done=False, pages=0, message="odd")]})
    assert main(["sync"], invoker=invoker) == 1
    assert len(invoker.calls) == 1
    assert "read nothing and is not done" in capsys.readouterr().out


def test_an_unreachable_stack_mid_loop_shows_the_runs_made_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a first run that was cut off, then the stack cannot be reached
    invoker = FakeInvoker({POLL: [cut_off(), OpsError("cannot reach AWS in eu-west-1: check the network")]})

    # When sync runs
    code = main(["sync"], invoker=invoker)

    # Then the run made is summed up, and the error is on stderr with exit 2
    out, err = capsys.readouterr()
    assert code == 2
    assert summary_totals(out)["runs"] == "1" and "before finishing" in out
    assert "cannot reach AWS" in err


def test_an_unreachable_stack_before_any_run_prints_nothing_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoker = FakeInvoker({POLL: OpsError("stack x in eu-west-1 not found: check --stack")})
    assert main(["sync", "--json"], invoker=invoker) == 2
    out, err = capsys.readouterr()
    assert out == "" and "check --stack" in err


@pytest.mark.parametrize("value", ["0", "-1", "many", TOKEN])
def test_a_bad_max_runs_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    invoker = FakeInvoker({POLL: [poll_answer()]})
    assert main(["sync", "--max-runs", value], invoker=invoker) == 2
    assert invoker.calls == []
    assert value not in capsys.readouterr().err.replace("--max-runs", "")


# --- backfill --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "since",
    ["last tuesday", "2025-13-01", "01/02/2025", "2025-01-01T25:00", "", "yesterday", "2999-01-01", TOKEN],
)
def test_backfill_refuses_a_bad_date(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a date that is not ISO-8601 (or lies in the future)
    invoker = FakeInvoker({POLL: [poll_answer(mode="backfill")]})

    # When backfill runs with it
    code = main(["backfill", "--since", since], invoker=invoker)

    # Then it is a usage error naming --since, nothing is invoked, and the value is not echoed
    assert code == 2
    assert invoker.calls == []
    err = capsys.readouterr().err
    assert "--since" in err and ("ISO-8601" in err or "future" in err)
    if since:
        assert since not in err


def test_backfill_needs_since(capsys: pytest.CaptureFixture[str]) -> None:
    invoker = FakeInvoker({POLL: [poll_answer(mode="backfill")]})
    assert main(["backfill"], invoker=invoker) == 2
    assert invoker.calls == [] and "--since" in capsys.readouterr().err


@pytest.mark.parametrize("since", ["2025-01-01", "2025-01-01T09:30:00Z", "2025-01-01T09:30:00+02:00"])
def test_backfill_sends_mode_and_since_on_every_run(since: str) -> None:
    # Given a backfill that takes two runs
    invoker = FakeInvoker({POLL: [cut_off(mode="backfill"), poll_answer(mode="backfill")]})

    # When backfill runs
    code = main(["backfill", "--since", since], invoker=invoker)

    # Then each run got the same payload, with the date as given
    assert code == 0
    assert invoker.calls == [(POLL, {"mode": "backfill", "since": since})] * 2


def test_backfill_publish_asks_for_a_publishing_backfill_on_every_run() -> None:
    # Given a backfill that takes two runs
    invoker = FakeInvoker({POLL: [cut_off(mode="backfill"), poll_answer(mode="backfill")]})

    # When backfill runs with --publish
    code = main(["backfill", "--since", "2025-01-01", "--publish"], invoker=invoker)

    # Then each run's payload asks the function to publish what it stores
    assert code == 0
    assert invoker.calls == [(POLL, {"mode": "backfill", "since": "2025-01-01", "publish": True})] * 2


def test_backfill_without_publish_stays_quiet_and_sync_has_no_publish(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the poll function
    invoker = FakeInvoker({POLL: [poll_answer(mode="backfill")]})

    # When backfill runs without --publish, and sync is given --publish
    quiet = main(["backfill", "--since", "2025-01-01"], invoker=invoker)
    sync = main(["sync", "--publish"], invoker=invoker)

    # Then the backfill's payload has no "publish" (the function's quiet default), and sync refuses it
    assert quiet == 0 and sync == 2
    assert invoker.calls == [(POLL, {"mode": "backfill", "since": "2025-01-01"})]
    assert "publish" not in invoker.calls[0][1]


def test_backfill_help_says_what_publish_does(capsys: pytest.CaptureFixture[str]) -> None:
    # When the backfill's help is asked for
    code = main(["backfill", "--help"], invoker=FakeInvoker({}))

    # Then --publish is listed, saying it announces the history it stores, and that quiet is the default
    assert code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "[--publish]" in text
    assert "--publish publish history too: an event on the bus (origin backfill) for each item" in text
    assert "Default: quiet, that history is stored but not announced" in text


def backfill_script(since: datetime) -> list[dict[str, Any]]:
    """Three runs that read 30, 60 and 90 of 100 days, then a fourth that finishes."""
    return [
        cut_off(mode="backfill", window_end=(since + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        for days in (30, 60, 90)
    ] + [poll_answer(mode="backfill", window_end=datetime.now(UTC).isoformat())]


def test_backfill_progress_shows_a_growing_percentage(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a backfill over 100 days that reports its window_end after each run
    since = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0)
    invoker = FakeInvoker({POLL: backfill_script(since)})

    # When backfill runs (not on a terminal)
    code = main(["backfill", "--since", since.isoformat()], invoker=invoker)

    # Then one line per run, each with a bar, and the percentage grows to 100
    assert code == 0
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith("run ")]
    assert len(progress) == 4 and all("[" in line and "]" in line for line in progress)
    shown = percentages("\n".join(progress))
    assert shown == sorted(shown) and len(set(shown)) == 4
    assert 29 <= shown[0] <= 31 and 59 <= shown[1] <= 61 and 89 <= shown[2] <= 91 and shown[3] == 100.0
    assert "backfill finished after 4 runs" in out


def test_on_a_terminal_the_bar_is_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a terminal on standard output
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    since = (datetime.now(UTC) - timedelta(days=100)).replace(microsecond=0)
    invoker = FakeInvoker({POLL: backfill_script(since)})

    # When backfill runs
    code = main(["backfill", "--since", since.isoformat()], invoker=invoker)

    # Then the four progress lines share one screen line (\r), ended once before the summary
    assert code == 0
    text = terminal.getvalue()
    progress, _, summary = text.partition("\n")
    assert progress.count("\r") == 4
    assert percentages(progress)[-1] == 100.0
    assert summary.startswith("✓ backfill finished")


@pytest.mark.parametrize("argv", [["sync", "--json"], ["--json", "backfill", "--since", "2025-01-01"]])
def test_json_prints_the_list_of_answers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given two runs, the first cut off
    script = [cut_off(extra={"newer": 1}), poll_answer()]
    invoker = FakeInvoker({POLL: script})

    # When the command runs with --json
    code = main(argv, invoker=invoker)

    # Then stdout is exactly the list of answers (progress is kept out of it)
    assert code == 0
    assert json.loads(capsys.readouterr().out) == script


def test_json_still_follows_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    held = poll_answer(done=False, pages=0, message=LEASE_HELD)
    invoker = FakeInvoker({POLL: [held]})
    assert main(["sync", "--json"], invoker=invoker) == 1
    assert json.loads(capsys.readouterr().out) == [held]


# --- the pieces ------------------------------------------------------------------------------


def test_parse_since_reads_dates_and_times_as_utc_unless_offset() -> None:
    assert parse_since("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_since(" 2025-01-01T09:00:00+02:00 ") == datetime(2025, 1, 1, 7, tzinfo=UTC)
    with pytest.raises(ValueError, match="future"):
        parse_since("2025-01-02", now=datetime(2025, 1, 1, tzinfo=UTC))


def test_backfill_fraction() -> None:
    since, now = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 11, tzinfo=UTC)
    assert backfill_fraction(since, {"ok": True, "window_end": "2025-01-06T00:00:00Z"}, now) == 0.5
    assert backfill_fraction(since, {"ok": True, "window_end": "2025-02-01T00:00:00Z"}, now) == 1.0
    assert backfill_fraction(since, {"ok": True, "done": True}, now) == 1.0
    assert backfill_fraction(since, {"ok": True, "window_end": None}, now) is None
    assert backfill_fraction(since, {"ok": True, "window_end": "soon"}, now) is None


@pytest.mark.parametrize("answer", [{}, {"ok": True, "notes": "one"}, {"pages": "3", "window_end": 7}])
def test_poll_rendering_tolerates_missing_and_odd_keys(answer: dict[str, Any]) -> None:
    line = render_poll_progress(answer, run=1, max_runs=20, bar=True, fraction=None)
    assert line.startswith("run 1/20") and "?" in line
    text = render_poll_summary([answer], mode="sync", stop=None, max_runs=20)
    assert text.splitlines()[0].split()[0] in {"✓", "✗"}


def test_poll_rendering_in_ascii() -> None:
    line = render_poll_progress(cut_off(), run=2, max_runs=5, bar=True, fraction=0.5, unicode=False)
    text = render_poll_summary([poll_answer()], mode="sync", stop="finished", max_runs=5, unicode=False)
    assert line.isascii() and "##########----------" in line and " 50.0%" in line
    assert text.isascii() and text.startswith("ok")
