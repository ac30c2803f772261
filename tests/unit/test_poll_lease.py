"""The lease: one poll run at a time; a run that cannot take it stops at once, uncounted."""

from __future__ import annotations

from datetime import timedelta

from calendly_sync.observability import metrics
from calendly_sync.poll_lease import LEASE_NAME, PollLease
from tests.unit.poll_fakes import NOW, FakeClock, FakeTable, Poller


def test_a_lease_is_held_for_the_lambdas_time_and_a_minute_from_the_clocks_now() -> None:
    table = FakeTable()
    lease = PollLease(table, FakeClock())
    assert lease.claim(remaining_ms=300_000) is True
    assert table.leases[LEASE_NAME] == (lease.owner, int(NOW.timestamp()) + 360)


def test_a_short_run_still_holds_it_for_a_minute() -> None:
    table = FakeTable()
    PollLease(table, FakeClock()).claim(remaining_ms=5_000)
    assert table.leases[LEASE_NAME][1] == int(NOW.timestamp()) + 65


def test_a_lease_held_by_another_run_is_refused_until_it_expires() -> None:
    # GIVEN another run holding the lease for 5 minutes
    table, clock = FakeTable(), FakeClock()
    table.leases[LEASE_NAME] = ("someone-else", int(NOW.timestamp()) + 300)
    # WHEN a run claims it now, and later once it has expired
    refused = PollLease(table, clock).claim(remaining_ms=60_000)
    clock.advance(timedelta(minutes=6))
    taken = PollLease(table, clock).claim(remaining_ms=60_000)
    # THEN it is refused, then taken
    assert refused is False and taken is True


def test_a_refused_lease_is_never_released_by_the_run_that_was_refused() -> None:
    table = FakeTable()
    table.leases[LEASE_NAME] = ("someone-else", int(NOW.timestamp()) + 300)
    lease = PollLease(table, FakeClock())
    lease.claim(remaining_ms=60_000)
    lease.release()
    assert table.released == [] and table.leases[LEASE_NAME][0] == "someone-else"


def test_a_run_facing_a_held_lease_stops_at_once_uncounted() -> None:
    # GIVEN another run holds the lease
    poller = Poller()
    poller.calendly.add("E1", NOW + timedelta(days=1))
    poller.table.leases[LEASE_NAME] = ("someone-else", int(NOW.timestamp()) + 300)
    # WHEN a run starts
    report = poller.run()
    # THEN it says so, touches nothing at Calendly, counts a skipped run and no run metrics
    assert report["ok"] is True and "another poll run is in progress" in report["message"]
    assert report["pages"] == 0 and poller.calendly.calls == [] and poller.table.writes == []
    assert (
        metrics.metric_set["PollRunsSkipped"]["Value"] == [1.0] and "PollRunsFailed" not in metrics.metric_set
    )


def test_a_run_gives_the_lease_back_when_it_ends_so_the_next_one_runs() -> None:
    poller = Poller()
    first, second = poller.run(), poller.run()
    assert first["done"] is True and second["done"] is True and len(poller.table.released) == 2


def test_a_lease_that_cannot_be_released_only_delays_the_next_run() -> None:
    # GIVEN DynamoDB refusing the release
    poller = Poller()
    poller.table.refuse_release = True
    # WHEN a run ends THEN its answer is unaffected; the lease expires on its own
    report = poller.run()
    assert report["ok"] is True and report["done"] is True
    poller.table.refuse_release = False
    poller.clock.advance(timedelta(minutes=7))
    assert "another poll run" not in poller.run()["message"]
