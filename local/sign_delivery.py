"""Print a sample API Gateway delivery event signed now, for ``sam local invoke`` or a replay.

    make -s event CASE=invitee_created > /tmp/event.json        # signed with the demo key
    sam local invoke ReceiveWebhookFunction -e /tmp/event.json

The signing key is read from standard input when one is piped in (never from the command
line, where it would land in shell history); without one, the samples' published demo key,
``local.sign_delivery.DEMO_SIGNING_KEY``, is used and a note says so on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local.lambda_runtime import resign_event

#: Not a secret: the key the committed sample events are signed with.
DEMO_SIGNING_KEY = "demo-signing-key-not-secret"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "event",
        type=Path,
        help="a stored API Gateway event, e.g. events/receive_webhook/invitee_created.json",
    )
    arguments = parser.parse_args(argv)
    key = "" if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not key:
        print("no key on standard input: signing with the samples' demo key", file=sys.stderr)
        key = DEMO_SIGNING_KEY
    try:
        event = json.loads(arguments.event.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        parser.error(f"cannot read {arguments.event}: {error}")
    json.dump(resign_event(event, key), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
