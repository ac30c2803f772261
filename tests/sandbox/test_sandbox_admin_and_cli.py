"""The /_sandbox/* admin endpoints other processes drive, and the standalone command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from local.calendly_sandbox import CalendlySandbox
from tests.sandbox.helpers import Api, WebhookReceiver

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_admin_endpoints_drive_the_sandbox_over_http(
    sandbox: CalendlySandbox, receiver: WebhookReceiver
) -> None:
    # Given only HTTP access: a token minted through the admin API and a subscription
    admin_url = sandbox.base_url + "/_sandbox"
    minted = requests.post(f"{admin_url}/tokens", json={"role": "owner"}, timeout=5).json()
    client = Api(sandbox.base_url, minted["token"])
    assert client.subscribe(receiver.url, sandbox.organization_uri).status_code == 201

    # When data is seeded, a booking made and canceled, and faults set, all over HTTP
    seeded = requests.post(
        f"{admin_url}/seed", json={"scheduled_events": 12, "start": "2030-01-01T00:00:00Z"}, timeout=5
    )
    booked = requests.post(f"{admin_url}/book", json={"email": "http@example.com"}, timeout=5).json()
    canceled = requests.post(
        f"{admin_url}/cancel", json={"invitee": booked["invitee"], "reason": "x"}, timeout=5
    )
    me = client.get("/users/me").json()["resource"]
    faults = requests.post(f"{admin_url}/faults", json={"server_errors": 1}, timeout=5).json()
    after_fault = client.get("/users/me")
    drained = requests.post(f"{admin_url}/deliver_pending", json={"timeout": 5}, timeout=10).json()
    stats = requests.get(f"{admin_url}/stats", timeout=5).json()

    # Then the effects are those of the Python API
    assert me["uri"] == minted["user"]
    assert seeded.json()["scheduled_events"] == 12
    assert canceled.status_code == 200
    assert faults["server_errors"] == 1
    assert after_fault.status_code == 500
    assert drained == {"drained": True}
    assert sorted(delivery.event for delivery in receiver.received) == ["invitee.canceled", "invitee.created"]
    assert stats["deliveries"]["succeeded"] == 2
    assert stats["requests"]["per_endpoint"]["POST /webhook_subscriptions"] == 1
    # ... and admin calls are neither counted as API requests nor rate limited
    assert sandbox.requests_count(path_prefix="/_sandbox") == 0


def test_admin_errors_are_json(sandbox: CalendlySandbox) -> None:
    # When an unknown invitee is canceled and an unknown fault is set
    unknown = requests.post(f"{sandbox.base_url}/_sandbox/cancel", json={"invitee": "nope"}, timeout=5)
    bad_fault = requests.post(f"{sandbox.base_url}/_sandbox/faults", json={"gremlins": 1}, timeout=5)

    # Then both are error bodies rather than crashes
    assert unknown.status_code == 404
    assert bad_fault.status_code == 400
    assert "gremlins" in bad_fault.json()["message"]


def test_command_line_prints_base_url_and_a_working_token() -> None:
    # Given the sandbox started as its own process on a free port
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.calendly_sandbox", "--port", "0", "--seed-events", "5"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # When its first lines are read
        assert process.stdout is not None
        printed = dict(process.stdout.readline().strip().split("=", 1) for _ in range(3))

        # Then the printed URL and token serve the seeded organization
        client = Api(printed["CALENDLY_BASE_URL"], printed["CALENDLY_TOKEN"])
        events = client.get("/scheduled_events", organization=printed["CALENDLY_ORGANIZATION"])
        assert events.status_code == 200
        assert len(events.json()["collection"]) == 5
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
