"""`python -m local.calendly_sandbox`: run the sandbox standalone until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from .config import SandboxConfig, TokenSpec
from .sandbox import CalendlySandbox


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.calendly_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--seed", type=int, default=1234, help="seed for ids, data and faults")
    parser.add_argument("--seed-events", type=int, default=0, help="scheduled events to seed at start-up")
    parser.add_argument("--users", type=int, default=3, help="users to seed along with the events")
    parser.add_argument("--days", type=int, default=30, help="days the seeded events are spread over")
    parser.add_argument("--rate-limit", type=int, default=500, help="requests per window per token")
    parser.add_argument("--rate-window", type=float, default=60.0, help="rate-limit window in seconds")
    parser.add_argument("--public-base", default="https://api.calendly.com", help="base of URIs in bodies")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        public_base=args.public_base,
    )
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with CalendlySandbox(config) as sandbox:
        token = sandbox.add_token(TokenSpec(role="owner", name="Sandbox Owner"))
        if args.seed_events > 0:
            sandbox.seed(users=args.users, scheduled_events=args.seed_events, days=args.days)
        print(f"CALENDLY_BASE_URL={sandbox.base_url}", flush=True)
        print(f"CALENDLY_TOKEN={token}", flush=True)
        print(f"CALENDLY_ORGANIZATION={sandbox.organization_uri}", flush=True)
        stop_requested.wait()
    return 0
