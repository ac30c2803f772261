"""``sync`` and ``backfill`` through the real functions, in-process, against the Calendly sandbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.runner import LocalStackRunner
from ops import LocalInvoker
from ops.cli import main

NOW = datetime.now(UTC)


def summary(out: str) -> dict[str, str]:
    """The summary's ``label   value`` lines (after the last progress line), as label -> value."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.fullmatch(r"(\S.*?)\s{2,}(\S.*)", line)
        if match and not line.startswith("run "):
            found[match.group(1)] = match.group(2)
    return found


@pytest.mark.slow
def test_sync_then_backfill_through_the_local_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        CalendlySandbox(SandboxConfig(seed=21)) as sandbox,
        LocalStackRunner(log_path=tmp_path / "f.log", calendly_url=sandbox.base_url) as runner,
    ):
        # Given 120 events a year ago (outside the sync window) and 5 bookings in the coming days
        sandbox.seed(
            users=2, event_types_per_user=1, scheduled_events=120, start=NOW - timedelta(days=400), days=60
        )
        for day in range(1, 6):
            sandbox.book(start_time=NOW + timedelta(days=day))
        # and a stack connected with an owner's token
        token = sandbox.add_token(TokenSpec(role="owner"))
        invoker = LocalInvoker(runner)
        assert invoker.invoke("ValidateCredentialsFunction", {"token": token})["valid"] is True
        capsys.readouterr()

        # When sync runs, then a backfill since before the history
        synced = main(["sync"], invoker=invoker)
        sync_out = capsys.readouterr().out
        since = (NOW - timedelta(days=410)).strftime("%Y-%m-%d")
        backfilled = main(["backfill", "--since", since], invoker=invoker)
        backfill_out = capsys.readouterr().out

    # Then both finished, sync copied the 5 bookings and the backfill the 120 old events
    assert synced == 0, sync_out
    assert "sync finished" in sync_out
    totals = summary(sync_out)
    assert totals["events seen"] == "5" and totals["events changed"] == "5" and totals["finished"] == "yes"
    assert int(totals["items written"]) >= 10  # each event and its invitee at least
    assert int(totals["Calendly requests"]) > 0

    assert backfilled == 0, backfill_out
    assert "backfill finished" in backfill_out
    totals = summary(backfill_out)
    assert totals["events seen"] == "120" and totals["events changed"] == "120"
    assert totals["finished"] == "yes" and totals["throttled (429)"] == "0"
    assert "100.0%" in backfill_out


@pytest.mark.slow
def test_a_backfill_cut_off_at_each_deadline_resumes_run_after_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.lambda_runtime import FakeLambdaContext

    # Given Lambda contexts whose time runs out after a few checks (about four pages a run)
    checks: dict[str, int] = {}

    def short_budget(context: FakeLambdaContext) -> int:
        checks[context.aws_request_id] = checks.get(context.aws_request_id, 0) + 1
        return 300_000 if checks[context.aws_request_id] <= 6 else 1_000

    with (
        CalendlySandbox(SandboxConfig(seed=22)) as sandbox,
        LocalStackRunner(log_path=tmp_path / "f.log", calendly_url=sandbox.base_url) as runner,
    ):
        sandbox.seed(
            users=1, event_types_per_user=1, scheduled_events=60, start=NOW - timedelta(days=400), days=60
        )
        token = sandbox.add_token(TokenSpec(role="owner"))
        invoker = LocalInvoker(runner)
        assert invoker.invoke("ValidateCredentialsFunction", {"token": token})["valid"] is True
        capsys.readouterr()
        monkeypatch.setattr(FakeLambdaContext, "get_remaining_time_in_millis", short_budget)

        # When a backfill over 410 days (14 chunks of 30) runs
        since = (NOW - timedelta(days=410)).strftime("%Y-%m-%d")
        code = main(["backfill", "--since", since], invoker=invoker)
        out = capsys.readouterr().out

    # Then it took several runs, each resuming further on, and finished with every event
    assert code == 0, out
    progress = [line for line in out.splitlines() if line.startswith("run ")]
    shown = [float(value) for value in re.findall(r"(\d+\.\d)%", "\n".join(progress))]
    assert len(progress) > 1 and len(shown) == len(progress)
    assert shown == sorted(set(shown)) and shown[-1] == 100.0
    assert all("resumed" in line for line in progress[1:])
    totals = summary(out)
    assert totals["runs"] == str(len(progress)) and totals["events seen"] == "60"
    assert totals["finished"] == "yes"
