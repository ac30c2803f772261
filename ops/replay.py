"""``python -m ops replay``: replay the bus's archive (EventArchive) onto the bus, and follow it.

A consumer that lost events (its queue purged, a bug that dropped them, a rule added late)
asks for the window again: EventBridge re-sends every archived event published in it to the
bus's rules. A replay cannot be narrowed by detail-type, only by the rules it is sent to
(``Destination.FilterArns``): ``--detail-type`` chooses the bus's rules whose pattern can
match one of the types, and such a rule also receives the other types it matches from the
window. Replayed events keep their ``change_id``: consumers dedupe on it.

This module runs with boto3 alone (no layer on the import path), like the rest of ``ops``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ops.invokers import OpsError, access_error, aws_session
from ops.moments import parse_iso

SOURCE = "calendly-sync"

#: Every detail-type the publisher sends (calendly_sync.events.DOWNSTREAM_EVENTS; a test holds
#: them equal, and equal to the template's ForwardDetailTypes default).
DETAIL_TYPES = (
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
    "event_type.created",
    "event_type.updated",
    "event_type.deleted",
    "routing_form_submission.created",
    "scheduled_event.updated",
)

TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
POLL_SECONDS = 5.0

_CONFIG = Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard"})


def parse_moment(text: str, *, now: datetime) -> datetime:
    """An ISO-8601 date or date-time, UTC when no offset is given, not in the future.

    Raises ValueError with a message for a person; the message never repeats ``text``.
    """
    moment = parse_iso(text)
    if moment > now:
        raise ValueError("is in the future: a replay re-sends events already published")
    return moment.astimezone(UTC)


def format_moment(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- which rules can receive a detail-type ----------------------------------------------------


def _value_may_match(matchers: Any, value: str) -> bool:
    """Whether one field's matchers (an event pattern's list) can match ``value``.

    Only what can be decided from the value alone is decided; a matcher this does not know
    (numeric, cidr, exists on a nested field...) counts as a possible match, so a rule is
    never left out of a replay it might have wanted.
    """
    if not isinstance(matchers, list):
        return True
    for matcher in matchers:
        if isinstance(matcher, str):
            if matcher == value:
                return True
        elif isinstance(matcher, Mapping):
            if "prefix" in matcher and isinstance(matcher["prefix"], str):
                if value.startswith(matcher["prefix"]):
                    return True
            elif "suffix" in matcher and isinstance(matcher["suffix"], str):
                if value.endswith(matcher["suffix"]):
                    return True
            elif "equals-ignore-case" in matcher:
                if str(matcher["equals-ignore-case"]).lower() == value.lower():
                    return True
            elif "anything-but" in matcher:
                excluded = matcher["anything-but"]
                if isinstance(excluded, str | list):
                    listed = [excluded] if isinstance(excluded, str) else excluded
                    if value not in listed:
                        return True
                else:
                    return True
            elif "exists" in matcher:
                if matcher["exists"] is True:
                    return True
            else:
                return True
        # null, numbers: never equal to a text value
    return False


def pattern_may_match(pattern: Mapping[str, Any], detail_type: str) -> bool:
    """Whether an event pattern can match an event of ours with ``detail_type``."""
    fields = {"source": SOURCE, "detail-type": detail_type}
    for name, value in fields.items():
        if name in pattern and not _value_may_match(pattern[name], value):
            return False
    if "$or" in pattern and isinstance(pattern["$or"], list):
        return any(
            pattern_may_match(branch, detail_type) for branch in pattern["$or"] if isinstance(branch, dict)
        )
    return True


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    pattern: dict[str, Any] | None  # None: a scheduled rule, never a replay's destination


def rules_for(rules: Iterable[Rule], detail_types: Sequence[str]) -> list[Rule]:
    """The rules (with an event pattern) that can receive any of ``detail_types``."""
    return [
        rule
        for rule in rules
        if rule.pattern is not None and any(pattern_may_match(rule.pattern, t) for t in detail_types)
    ]


# --- EventBridge and CloudFormation ------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    name: str
    arn: str
    bus_arn: str

    @property
    def bus_name(self) -> str:
        return self.bus_arn.rsplit("/", 1)[-1]


@dataclass
class ReplayClients:
    """The AWS clients a replay uses (built from a session; tests may hand their own)."""

    events: Any
    cloudformation: Any
    region: str = ""

    @classmethod
    def from_session(cls, region: str | None, session: boto3.Session | None = None) -> ReplayClients:
        with aws_session(region, session) as (session, resolved):
            return cls(
                session.client("events", region_name=resolved, config=_CONFIG),
                session.client("cloudformation", region_name=resolved, config=_CONFIG),
                resolved,
            )


def _aws_error(error: Exception, operation: str) -> OpsError:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code, message = info.get("Code", ""), info.get("Message", "")
        return access_error(code, message, operation) or OpsError(
            f"{operation} failed: {code or 'error'}: {message}"
        )
    return OpsError(f"AWS call failed: {type(error).__name__}: {error}")


def _call(operation: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        raise _aws_error(error, operation) from None


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str] | None:
    """The deployed stack's outputs by key; None when there is no such stack."""
    try:
        answer = cloudformation.describe_stacks(StackName=stack)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if "does not exist" in message:
            return None
        raise _aws_error(error, "cloudformation:DescribeStacks") from None
    except BotoCoreError as error:
        raise _aws_error(error, "cloudformation:DescribeStacks") from None
    return {
        str(output["OutputKey"]): str(output["OutputValue"])
        for output in answer["Stacks"][0].get("Outputs", [])
        if "OutputKey" in output and "OutputValue" in output
    }


def stack_output(cloudformation: Any, stack: str, key: str) -> str:
    """One output of the deployed stack (EventArchiveName)."""
    outputs = stack_outputs(cloudformation, stack)
    if outputs is None:
        raise OpsError(
            f"stack {stack} not found: check --stack (sam deploy's stack_name) and --region, "
            "or name the archive with --archive"
        )
    if key not in outputs:
        raise OpsError(
            f"stack {stack} has no output {key}: deploy the current template (sam build && sam deploy)"
        )
    return outputs[key]


def _stack_bus_for_archive(clients: ReplayClients, stack: str, *, stack_named: bool) -> str | None:
    """The bus (ARN, else name) of the stack an ``--archive`` must belong to; None: no stack to check.

    Only when ``--stack`` was left out and its default names no deployed stack is there nothing
    to hold the archive to (replaying an archive with no stack at all, as the README allows);
    a stack named on the command line must exist, and its bus is the only one replayed onto.
    """
    outputs = stack_outputs(clients.cloudformation, stack)
    if outputs is None:
        if stack_named:
            raise OpsError(
                f"stack {stack} not found, so the archive cannot be checked to be its own: "
                "check --stack (sam deploy's stack_name) and --region"
            )
        return None
    bus = outputs.get("EventBusArn") or outputs.get("EventBusName")
    if not bus:
        raise OpsError(
            f"stack {stack} has no output EventBusArn to check the archive against: "
            "deploy the current template (sam build && sam deploy)"
        )
    return bus


def find_archive(
    clients: ReplayClients, *, stack: str, archive: str | None, bus: str | None, stack_named: bool = True
) -> Archive:
    """The archive to replay (``--archive``, else the stack's EventArchiveName) and its bus.

    An archive named with ``--archive`` must keep the events of the stack's own bus: replaying
    another stack's archive would re-send that stack's events onto that stack's bus, whatever
    ``--stack`` says (``stack_named``: whether ``--stack`` was given, see above).
    """
    stack_bus: str | None = None
    if archive is None:
        name = stack_output(clients.cloudformation, stack, "EventArchiveName")
    else:
        name = archive
        stack_bus = _stack_bus_for_archive(clients, stack, stack_named=stack_named)
    try:
        described = clients.events.describe_archive(ArchiveName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise OpsError(f"archive {name} not found: check --archive or --stack and --region") from None
        raise _aws_error(error, "events:DescribeArchive") from None
    except BotoCoreError as error:
        raise _aws_error(error, "events:DescribeArchive") from None
    found = Archive(
        str(described["ArchiveName"]), str(described["ArchiveArn"]), str(described["EventSourceArn"])
    )
    if stack_bus is not None and stack_bus not in (found.bus_arn, found.bus_name):
        raise OpsError(
            f"archive {found.name} is not stack {stack}'s: it keeps the events of bus {found.bus_name}, "
            f"and the stack's bus is {stack_bus.rsplit('/', 1)[-1]}. Name the archive's own stack with "
            "--stack, or leave --archive out to replay the stack's EventArchive"
        )
    # A replay goes back to the bus the archive keeps; --bus only confirms it.
    if bus is not None and bus not in (found.bus_arn, found.bus_name):
        raise OpsError(
            f"archive {found.name} keeps the events of bus {found.bus_name}, not {bus}: "
            "EventBridge replays an archive onto its own bus only"
        )
    return found


def bus_rules(events: Any, bus_name: str) -> list[Rule]:
    """The bus's rules, without those EventBridge manages itself (the archive's own rule)."""
    found: list[Rule] = []
    arguments: dict[str, Any] = {"EventBusName": bus_name}
    while True:
        page = _call("events:ListRules", lambda: events.list_rules(**arguments))
        for rule in page.get("Rules", []):
            if rule.get("ManagedBy") or str(rule.get("Name", "")).startswith("Events-Archive-"):
                continue
            pattern = rule.get("EventPattern")
            found.append(Rule(str(rule["Name"]), str(rule["Arn"]), json.loads(pattern) if pattern else None))
        if not page.get("NextToken"):
            return found
        arguments["NextToken"] = page["NextToken"]


# --- the replay ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPlan:
    archive: Archive
    since: datetime
    until: datetime
    detail_types: tuple[str, ...]
    #: The rules chosen for --detail-type; empty: every rule of the bus.
    rules: tuple[Rule, ...] = ()
    name: str = field(default="")


def replay_name(now: datetime) -> str:
    """A unique replay name (EventBridge: 64 characters of [.-_A-Za-z0-9])."""
    return f"calendly-sync-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def plan_replay(
    clients: ReplayClients,
    *,
    stack: str,
    archive: str | None,
    bus: str | None,
    since: datetime,
    until: datetime,
    detail_types: Sequence[str],
    now: datetime,
    stack_named: bool = True,
) -> ReplayPlan:
    """Check the request and choose the rules; raises OpsError when it cannot be replayed."""
    found = find_archive(clients, stack=stack, archive=archive, bus=bus, stack_named=stack_named)
    chosen: tuple[Rule, ...] = ()
    if detail_types:
        chosen = tuple(rules_for(bus_rules(clients.events, found.bus_name), detail_types))
        if not chosen:
            raise OpsError(
                f"no rule on bus {found.bus_name} can receive {', '.join(detail_types)}: nothing to replay"
            )
    return ReplayPlan(found, since, until, tuple(detail_types), chosen, replay_name(now))


def start_replay(events: Any, plan: ReplayPlan) -> dict[str, Any]:
    destination: dict[str, Any] = {"Arn": plan.archive.bus_arn}
    if plan.rules:
        destination["FilterArns"] = [rule.arn for rule in plan.rules]
    description = "python -m ops replay" + (
        f" --detail-type {' '.join(plan.detail_types)}" if plan.detail_types else ""
    )
    answer: dict[str, Any] = _call(
        "events:StartReplay",
        lambda: events.start_replay(
            ReplayName=plan.name,
            Description=description[:512],
            EventSourceArn=plan.archive.arn,
            EventStartTime=plan.since,
            EventEndTime=plan.until,
            Destination=destination,
        ),
    )
    return answer


def follow(
    events: Any,
    name: str,
    *,
    sleep: Callable[[float], None],
    interval: float = POLL_SECONDS,
) -> Iterator[dict[str, Any]]:
    """DescribeReplay until the replay ends; yields each answer (the last one terminal)."""
    while True:
        answer: dict[str, Any] = _call(
            "events:DescribeReplay", lambda: events.describe_replay(ReplayName=name)
        )
        yield answer
        if answer.get("State") in TERMINAL_STATES:
            return
        sleep(interval)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def replay_fraction(plan: ReplayPlan, answer: Mapping[str, Any]) -> float | None:
    """How far into the window the replay has re-sent events (EventLastReplayedTime)."""
    if answer.get("State") == "COMPLETED":
        return 1.0
    last = _as_datetime(answer.get("EventLastReplayedTime"))
    total = (plan.until - plan.since).total_seconds()
    if last is None or total <= 0:
        return None
    return min(1.0, max(0.0, (last - plan.since).total_seconds() / total))


def render_plan(plan: ReplayPlan) -> str:
    lines = [
        f"replay {plan.name}: {SOURCE} events published "
        f"{format_moment(plan.since)} .. {format_moment(plan.until)}",
        f"  from archive {plan.archive.name} onto bus {plan.archive.bus_name}",
    ]
    if plan.rules:
        lines.append(f"  to the rules that can receive {', '.join(plan.detail_types)}:")
        lines.extend(f"    {rule.name}" for rule in plan.rules)
        lines.append(
            "  note: EventBridge replays to rules, not by detail-type: these rules also receive every "
            "other detail-type they match from this window"
        )
    else:
        lines.append("  to every rule of the bus")
    lines.append("  consumers receive events they may already have: they dedupe on detail.change_id")
    return "\n".join(lines)


def render_progress(plan: ReplayPlan, answer: Mapping[str, Any]) -> str:
    state = str(answer.get("State") or "UNKNOWN")
    fraction = replay_fraction(plan, answer)
    text = state if fraction is None else f"{state} {fraction:.0%}"
    last = _as_datetime(answer.get("EventLastReplayedTime"))
    if last is not None and state not in TERMINAL_STATES:
        text += f" (events up to {format_moment(last)})"
    if answer.get("StateReason"):
        text += f": {answer['StateReason']}"
    return text


def jsonable(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: format_moment(value) if isinstance(value, datetime) else value
        for key, value in answer.items()
        if key != "ResponseMetadata"
    }
