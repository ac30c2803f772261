"""``python -m ops connect|subscribe|status|rotate-key|sync|backfill [--stack NAME] [--region R] [--json]``.

Each command invokes one function of a deployed stack and prints its answer (``--json``: the
answer itself). Exit status: 0 when the answer says it worked, 1 when the function answered
but reports a problem, 2 for usage errors or when the stack or its functions cannot be
reached.

``connect`` reads the Calendly Personal Access Token from ``CALENDLY_TOKEN``, else from
standard input (prompting without echo on a terminal); there is deliberately no way to give
it on the command line, where it would land in shell history and process listings. The token
is never printed: whatever is written is first cleared of it.

``sync`` and ``backfill --since DATE [--publish]`` invoke ``PollCalendlyFunction`` again while it answers
ok but not done (a run that reaches its deadline checkpoints; the next resumes), up to
``--max-runs``, with a line of progress per run and a summary of the totals at the end
(``--json``: the list of answers). They exit 1 when a run failed, another run holds the
poll lease, or ``--max-runs`` was reached before the function said done.

``replay --since TIME [--until TIME] [--detail-type T ...]`` starts an EventBridge replay of
the stack's EventArchive onto its bus and follows it until it ends (see :mod:`ops.replay`).
It exits 0 when the replay completed, 1 when it failed or was cancelled, 2 for a bad time
window, an unknown detail-type, no rule that can receive it, an unreachable stack, or an
``--archive`` that is not an archive of the stack's bus.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

from ops.invokers import FunctionInvoker, OpsError, StackInvoker
from ops.poll import DEFAULT_MAX_RUNS, PollLoop, backfill_fraction, parse_since
from ops.render import (
    render_poll_progress,
    render_poll_summary,
    render_subscription,
    render_validation,
    unicode_ok,
)
from ops.replay import (
    DETAIL_TYPES,
    ReplayClients,
    follow,
    jsonable,
    parse_moment,
    plan_replay,
    render_plan,
    render_progress,
    start_replay,
)

DEFAULT_STACK = "calendly-sync-dev"  # samconfig.toml's default stack_name
TOKEN_ENVIRONMENT_VARIABLE = "CALENDLY_TOKEN"  # noqa: S105 (a variable's name, not a token)
VALIDATE_CREDENTIALS = "ValidateCredentialsFunction"
WEBHOOK_SUBSCRIPTION = "WebhookSubscriptionFunction"

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
_MAX_TOKEN_CHARS = 16_384


@dataclass(frozen=True)
class _Command:
    function: str
    success_key: str
    render: Callable[..., str]
    help: str
    action: str | None = None  # WebhookSubscriptionFunction's action


COMMANDS: dict[str, _Command] = {
    "connect": _Command(
        VALIDATE_CREDENTIALS,
        "valid",
        render_validation,
        f"validate a Calendly token (from ${TOKEN_ENVIRONMENT_VARIABLE} or stdin) and save it",
    ),
    "subscribe": _Command(
        WEBHOOK_SUBSCRIPTION, "ok", render_subscription, "create or repair the webhook subscription", "ensure"
    ),
    "status": _Command(
        WEBHOOK_SUBSCRIPTION, "ok", render_subscription, "show the webhook subscription", "status"
    ),
    "rotate-key": _Command(
        WEBHOOK_SUBSCRIPTION,
        "ok",
        render_subscription,
        "rotate the webhook signing key and re-subscribe with it",
        "rotate-key",
    ),
}

#: The commands that run PollCalendlyFunction until it is done (see ops.poll).
POLL_COMMANDS: dict[str, str] = {
    "sync": "sync the table with Calendly now, resuming run after run until the sync is done",
    "backfill": "read Calendly's history since a date into the table, resuming until done",
}

REPLAY_HELP = "re-send the events published in a time window (EventArchive) to the bus's rules, and follow it"


@dataclass(frozen=True)
class _Since:
    text: str  # as given (trimmed): what the function is sent
    moment: datetime  # parsed, in UTC when no offset was given


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes stray arguments: one of them could be a token."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message = (
                "unexpected arguments (not shown). A token is never given as an argument: "
                f"set {TOKEN_ENVIRONMENT_VARIABLE} or pipe it on standard input"
            )
        elif "invalid choice" in message:
            commands = ", ".join([*COMMANDS, *POLL_COMMANDS, "replay"])
            message = f"unknown command (not shown); choose from {commands}"
        super().error(message)


class _Redactor:
    """Clears known secrets out of text before it is written anywhere."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if secret:
            self._secrets.update({secret, json.dumps(secret)[1:-1]})

    def clean(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ops",
        description="Operator commands for a deployed calendly-sync stack.",
        allow_abbrev=False,
    )
    _add_common_options(parser, defaults=True)
    common = _Parser(add_help=False, allow_abbrev=False)
    _add_common_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name, parents=[common], help=command.help, description=command.help, allow_abbrev=False
        )
        if name == "connect":
            sub.add_argument(
                "--recheck",
                action="store_true",
                help="re-check the token already stored in the stack (no token is read)",
            )
    for name, help_text in POLL_COMMANDS.items():
        sub = commands.add_parser(
            name, parents=[common], help=help_text, description=help_text, allow_abbrev=False
        )
        if name == "backfill":
            sub.add_argument(
                "--since",
                required=True,
                type=_since,
                metavar="DATE",
                help="ISO-8601 date or date-time to read from, e.g. 2025-01-01 (UTC unless it has an offset)",
            )
            sub.add_argument(
                "--publish",
                action="store_true",
                help="publish history too: an event on the bus (origin backfill) for each item the backfill "
                "stores for the first time. Default: quiet, that history is stored but not announced "
                "(a change to an item the table already held is published either way)",
            )
        sub.add_argument(
            "--max-runs",
            type=_positive_int,
            default=DEFAULT_MAX_RUNS,
            metavar="N",
            help=f"invoke the function at most N times (default: {DEFAULT_MAX_RUNS})",
        )
    replay = commands.add_parser(
        "replay", parents=[common], help=REPLAY_HELP, description=REPLAY_HELP, allow_abbrev=False
    )
    replay.add_argument(
        "--since",
        required=True,
        type=_moment,
        metavar="TIME",
        help="ISO-8601 date or date-time: events published from then (UTC unless it has an offset)",
    )
    replay.add_argument("--until", type=_moment, metavar="TIME", help="...up to then (default: now)")
    replay.add_argument(
        "--detail-type",
        dest="detail_types",
        action="append",
        default=[],
        type=_detail_type,
        metavar="TYPE",
        help="only to the rules that can receive this detail-type (repeatable; they also get their other "
        f"types from the window). One of: {', '.join(DETAIL_TYPES)}",
    )
    replay.add_argument(
        "--archive",
        help="the archive's name (default: the stack's EventArchiveName output); it must be an archive of "
        "the stack's bus, or it is refused (unless --stack is left out and no stack has the default name)",
    )
    replay.add_argument("--bus", help="the bus (name or ARN) to check the archive replays onto (its own)")
    return parser


# argparse types: their ArgumentTypeError messages are shown as they are, without the value.
def _since(text: str) -> _Since:
    try:
        return _Since(text.strip(), parse_since(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _moment(text: str) -> datetime:
    try:
        return parse_moment(text, now=datetime.now(UTC))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _detail_type(text: str) -> str:
    if text.strip() not in DETAIL_TYPES:
        raise argparse.ArgumentTypeError(f"unknown detail-type; one of: {', '.join(DETAIL_TYPES)}")
    return text.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("must be a whole number, at least 1")
    return value


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before or after the command; only the top level sets defaults.
    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    # No default value: main() tells a stack named on the command line from the default one.
    parser.add_argument("--stack", default=default(None), help=f"stack name (default: {DEFAULT_STACK})")
    parser.add_argument(
        "--region", default=default(None), help="AWS region (default: from the AWS environment or profile)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the function's answer as JSON (sync, backfill: the list of answers)",
    )


def read_token(stdin: TextIO | None, environ: Mapping[str, str]) -> str:
    """The PAT from ``CALENDLY_TOKEN``, else standard input (a hidden prompt on a terminal)."""
    token = environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if not token:
        if stdin is None or stdin.closed:
            raise OpsError(f"no token: set {TOKEN_ENVIRONMENT_VARIABLE} or pipe the token on standard input")
        if stdin.isatty():
            try:
                token = getpass.getpass("Calendly Personal Access Token (input hidden): ")
            except EOFError:
                token = ""
        else:
            token = stdin.read(_MAX_TOKEN_CHARS + 1)
            if len(token) > _MAX_TOKEN_CHARS:
                raise OpsError("standard input is too long to be a token: give only the token")
        token = token.strip()
    if not token:
        raise OpsError(f"no token: set {TOKEN_ENVIRONMENT_VARIABLE} or pipe the token on standard input")
    if any(character.isspace() for character in token):
        raise OpsError("the token contains spaces or several lines: give only the token")
    return token


def main(
    argv: Sequence[str] | None = None,
    invoker: FunctionInvoker | None = None,
    *,
    replay_clients: ReplayClients | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run one command; returns the exit status (0 worked, 1 problem reported, 2 usage/unreachable)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as stop:  # --help, or a usage error already explained on stderr
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    args.stack_named = args.stack is not None
    if not args.stack_named:
        args.stack = DEFAULT_STACK
    if args.command in POLL_COMMANDS:
        return _poll(args, invoker)
    if args.command == "replay":
        return _replay(args, replay_clients, sleep)
    command = COMMANDS[args.command]
    redactor = _Redactor()
    try:
        if invoker is None:
            invoker = StackInvoker(args.stack, args.region)
        payload: dict[str, Any]
        if command.function == VALIDATE_CREDENTIALS:
            if args.recheck:
                payload = {}
            else:
                token = read_token(sys.stdin, os.environ)
                redactor.add(token)
                payload = {"token": token}
        else:
            payload = {"action": command.action}
        answer = invoker.invoke(command.function, payload)
    except OpsError as error:
        _write(sys.stderr, redactor.clean(f"error: {error}"))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _write(sys.stderr, "interrupted")
        return 130
    except Exception as error:  # never a traceback: it could quote the payload
        _write(sys.stderr, redactor.clean(f"error: unexpected {type(error).__name__}: {error}"))
        return EXIT_USAGE
    unicode = unicode_ok(getattr(sys.stdout, "encoding", None) or "utf-8")
    if args.json:
        text = json.dumps(answer, indent=2, ensure_ascii=not unicode)
    else:
        text = command.render(answer, unicode=unicode)
    _write(sys.stdout, redactor.clean(text))
    return EXIT_OK if answer.get(command.success_key) is True else EXIT_PROBLEM


def _poll(args: argparse.Namespace, invoker: FunctionInvoker | None) -> int:
    """``sync`` / ``backfill``: invoke PollCalendlyFunction until done, showing progress, then totals."""
    unicode = unicode_ok(getattr(sys.stdout, "encoding", None) or "utf-8")
    payload: dict[str, Any] = {"mode": args.command}
    since: datetime | None = None
    if args.command == "backfill":
        payload["since"] = args.since.text
        since = args.since.moment
        if args.publish:
            payload["publish"] = True  # absent, not false, when quiet: what the function has always been sent
    # With --json, stdout is only the answers: progress goes to stderr, and only for a person.
    progress = _Progress(
        sys.stderr if args.json else sys.stdout, enabled=not args.json or _isatty(sys.stderr)
    )
    loop: PollLoop | None = None
    failure, code = "", EXIT_USAGE
    try:
        if invoker is None:
            invoker = StackInvoker(args.stack, args.region)
        loop = PollLoop(invoker, payload, args.max_runs)
        for run, answer in enumerate(loop, start=1):
            fraction = backfill_fraction(since, answer, datetime.now(UTC)) if since is not None else None
            progress.show(
                render_poll_progress(
                    answer,
                    run=run,
                    max_runs=args.max_runs,
                    bar=since is not None,
                    fraction=fraction,
                    unicode=unicode,
                )
            )
    except OpsError as error:
        failure = f"error: {error}"
    except KeyboardInterrupt:
        failure, code = "interrupted", 130
    except Exception as error:  # never a traceback, as for the other commands
        failure = f"error: unexpected {type(error).__name__}: {error}"
    progress.end()
    answers = loop.answers if loop is not None else []
    if args.json:
        if answers or not failure:
            _write(sys.stdout, json.dumps(answers, indent=2, ensure_ascii=not unicode))
    elif answers:
        stop = loop.stop if loop is not None and not failure else None
        _write(
            sys.stdout,
            render_poll_summary(
                answers, mode=args.command, stop=stop, max_runs=args.max_runs, unicode=unicode
            ),
        )
    if failure:
        _write(sys.stderr, failure)
        return code
    return EXIT_OK if loop is not None and loop.finished else EXIT_PROBLEM


def _replay(args: argparse.Namespace, clients: ReplayClients | None, sleep: Callable[[float], None]) -> int:
    """``replay``: start an EventBridge replay of the archive onto its bus and follow it to its end."""
    now = datetime.now(UTC)
    until = args.until or now
    if until <= args.since:
        _write(sys.stderr, "error: --until must be later than --since")
        return EXIT_USAGE
    # With --json, stdout is only the final DescribeReplay answer: the rest goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    progress = _Progress(out, enabled=not args.json or _isatty(sys.stderr))
    name, last = "", None
    try:
        clients = clients or ReplayClients.from_session(args.region)
        plan = plan_replay(
            clients,
            stack=args.stack,
            archive=args.archive,
            bus=args.bus,
            since=args.since,
            until=until,
            detail_types=list(dict.fromkeys(args.detail_types)),
            now=now,
            stack_named=args.stack_named,
        )
        name = plan.name
        if progress.enabled:
            _write(out, render_plan(plan))
        start_replay(clients.events, plan)
        for answer in follow(clients.events, plan.name, sleep=sleep):
            last = answer
            progress.show(render_progress(plan, answer))
    except OpsError as error:
        progress.end()
        _write(sys.stderr, f"error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        progress.end()
        if name:
            _write(
                sys.stderr,
                f"interrupted: replay {name} goes on in EventBridge "
                f"(stop it with: aws events cancel-replay --replay-name {name})",
            )
        return 130
    except Exception as error:  # never a traceback, as for the other commands
        progress.end()
        _write(sys.stderr, f"error: unexpected {type(error).__name__}: {error}")
        return EXIT_USAGE
    progress.end()
    state = (last or {}).get("State")
    if args.json:
        _write(sys.stdout, json.dumps(jsonable(last or {}), indent=2))
    elif state != "COMPLETED":
        reason = (last or {}).get("StateReason") or "no reason given"
        _write(sys.stderr, f"replay {name} ended {state}: {reason}")
    return EXIT_OK if state == "COMPLETED" else EXIT_PROBLEM


class _Progress:
    """One line per run; on a terminal, one line redrawn in place (``\\r``) instead."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.redraw = enabled and _isatty(stream)
        self._width = 0  # of the line on screen, while redrawing

    def show(self, line: str) -> None:
        if not self.enabled:
            return
        if not self.redraw:
            _write(self.stream, line)
            return
        line = line[: max(20, shutil.get_terminal_size().columns - 1)]  # a wrapped line cannot be redrawn
        self.stream.write("\r" + line + " " * max(0, self._width - len(line)))
        self.stream.flush()
        self._width = len(line)

    def end(self) -> None:
        if self.redraw and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _write(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
