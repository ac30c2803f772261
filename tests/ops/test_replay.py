"""``python -m ops replay``: an EventBridge replay of the stack's archive, with moto's EventBridge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from calendly_sync.events import DOWNSTREAM_EVENTS
from local.stack import load_template
from ops.cli import main
from ops.replay import DETAIL_TYPES, ReplayClients, pattern_may_match

REGION = "us-east-1"
BUS = "calendly-test-bus"
ARCHIVE = "calendly-test-archive"
NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = (NOW - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")

#: Rules a consumer team might have put on the bus, by what they ask for.
RULES = {
    "cancellations": {"source": ["calendly-sync"], "detail-type": ["invitee.canceled"]},
    "everything-calendly": {"source": ["calendly-sync"]},
    "invitee-anything": {"detail-type": [{"prefix": "invitee."}]},
    "not-cancellations": {
        "source": ["calendly-sync"],
        "detail-type": [{"anything-but": ["invitee.canceled"]}],
    },
    "event-types": {"source": ["calendly-sync"], "detail-type": ["event_type.created", "event_type.updated"]},
    "someone-else": {"source": ["billing"]},
}


class Stack:
    """A bus with its archive and consumer rules in moto, as the deployed stack has them."""

    def __init__(self) -> None:
        self.events = boto3.client("events", region_name=REGION)
        self.bus_arn = self.events.create_event_bus(Name=BUS)["EventBusArn"]
        self.archive_arn = self.events.create_archive(
            ArchiveName=ARCHIVE, EventSourceArn=self.bus_arn, EventPattern='{"source": ["calendly-sync"]}'
        )["ArchiveArn"]
        self.rule_arns = {
            name: self.events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))[
                "RuleArn"
            ]
            for name, pattern in RULES.items()
        }
        self.clients = ReplayClients(self.events, boto3.client("cloudformation", region_name=REGION), REGION)

    def replays(self) -> list[dict[str, Any]]:
        return [
            self.events.describe_replay(ReplayName=r["ReplayName"])
            for r in self.events.list_replays(EventSourceArn=self.archive_arn)["Replays"]
        ]

    def deploy(self, name: str, outputs: dict[str, str]) -> None:
        """A deployed stack named ``name`` whose outputs are ``outputs``."""
        self.clients.cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(
                {
                    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {key: {"Value": value} for key, value in outputs.items()},
                }
            ),
        )


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield Stack()


def no_sleep(seconds: float) -> None:
    raise AssertionError("moto's replay is done at once: nothing to wait for")


def test_a_replay_of_some_detail_types_goes_to_the_rules_that_can_receive_them(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the archive and six consumer rules on the bus
    # When cancellations are replayed for the last six hours
    code = main(
        ["replay", "--since", SINCE, "--detail-type", "invitee.canceled", "--archive", ARCHIVE],
        replay_clients=stack.clients,
        sleep=no_sleep,
    )

    # Then one replay of the archive onto its own bus, to the rules whose pattern can match
    # invitee.canceled (and not to the one that excludes it, or another source's)
    assert code == 0
    (replay,) = stack.replays()
    assert replay["State"] == "COMPLETED"
    assert replay["EventSourceArn"] == stack.archive_arn
    assert replay["Destination"]["Arn"] == stack.bus_arn
    chosen = {"cancellations", "everything-calendly", "invitee-anything"}
    assert sorted(replay["Destination"]["FilterArns"]) == sorted(stack.rule_arns[name] for name in chosen)
    # And the operator is told which rules, that they get their other types too, and to dedupe
    out = capsys.readouterr().out
    for name in chosen:
        assert f"    {name}\n" in out
    assert "not-cancellations" not in out and "someone-else" not in out
    assert "also receive every other detail-type they match" in out
    assert "dedupe on detail.change_id" in out
    assert out.rstrip().endswith("COMPLETED 100%")


def test_a_replay_without_detail_types_goes_to_every_rule_and_finds_the_archive_from_the_stack(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack whose outputs name the archive
    stack.clients.cloudformation.create_stack(
        StackName="calendly-sync-dev",
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"EventArchiveName": {"Value": ARCHIVE}},
            }
        ),
    )
    # When the window is replayed with --json
    code = main(["replay", "--since", SINCE, "--json"], replay_clients=stack.clients, sleep=no_sleep)

    # Then every rule of the bus receives it, and stdout is the final answer alone
    assert code == 0
    (replay,) = stack.replays()
    assert "FilterArns" not in replay["Destination"]
    answer = json.loads(capsys.readouterr().out)
    assert answer["State"] == "COMPLETED" and answer["ReplayName"] == replay["ReplayName"]


class ScriptedCloudFormation:
    """A CloudFormation client that knows one stack, the default one, on ``bus_arn``."""

    def __init__(self, bus_arn: str) -> None:
        self.bus_arn = bus_arn

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        assert StackName == "calendly-sync-dev"
        outputs = [{"OutputKey": "EventBusArn", "OutputValue": self.bus_arn}]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


class ScriptedEvents:
    """An EventBridge client whose replay takes a while, then ends in ``last_state``."""

    def __init__(self, bus_arn: str, last_state: str, reason: str = "") -> None:
        self.bus_arn = bus_arn
        self.answers: list[dict[str, Any]] = [
            {"State": "STARTING"},
            {"State": "RUNNING", "EventLastReplayedTime": NOW - timedelta(hours=3)},
            {"State": last_state, **({"StateReason": reason} if reason else {})},
        ]
        self.started: list[dict[str, Any]] = []

    def describe_archive(self, ArchiveName: str) -> dict[str, Any]:
        return {
            "ArchiveName": ArchiveName,
            "ArchiveArn": f"arn:aws:events:{REGION}:123456789012:archive/{ArchiveName}",
            "EventSourceArn": self.bus_arn,
        }

    def start_replay(self, **arguments: Any) -> dict[str, Any]:
        self.started.append(arguments)
        return {"State": "STARTING"}

    def describe_replay(self, ReplayName: str) -> dict[str, Any]:
        return self.answers.pop(0)


@pytest.mark.parametrize(("last_state", "code"), [("COMPLETED", 0), ("FAILED", 1), ("CANCELLED", 1)])
def test_the_replay_is_followed_until_it_ends(
    last_state: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a replay that starts, runs half way through the window, then ends
    bus_arn = f"arn:aws:events:{REGION}:123456789012:event-bus/{BUS}"
    events = ScriptedEvents(bus_arn, last_state, "a reason")
    waits: list[float] = []
    since = (NOW - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # When it is started and followed (a fake clock: each wait is recorded, not slept)
    result = main(
        ["replay", "--since", since, "--until", NOW.isoformat(), "--archive", ARCHIVE],
        replay_clients=ReplayClients(events, ScriptedCloudFormation(bus_arn), REGION),
        sleep=waits.append,
    )

    # Then the window was asked for as given, each state was shown, and the exit code says how it ended
    assert result == code
    (started,) = events.started
    assert (started["EventStartTime"], started["EventEndTime"]) == (NOW - timedelta(hours=6), NOW)
    assert waits == [5.0, 5.0]
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "STARTING" in lines
    assert f"RUNNING 50% (events up to {(NOW - timedelta(hours=3)).strftime('%Y-%m-%dT%H:%M:%SZ')})" in lines
    if last_state != "COMPLETED":
        assert f"ended {last_state}: a reason" in captured.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since", "2025-01-02", "--until", "2025-01-01"], "--until must be later than --since"),
        (["--since", "2025-01-01", "--until", "2025-01-01"], "--until must be later than --since"),
        (["--since", "yesterday"], "must be an ISO-8601 date or date-time"),
        (["--since", "2025-01-01", "--until", "2025-13-01"], "must be an ISO-8601 date or date-time"),
        (["--since", (NOW + timedelta(days=1)).isoformat()], "is in the future"),
        (["--since", "2025-01-01", "--detail-type", "invitee.updated"], "unknown detail-type"),
        ([], "the following arguments are required: --since"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(
    arguments: list[str], message: str, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the command is given a window or a type it cannot replay
    code = main(["replay", *arguments, "--archive", ARCHIVE], replay_clients=stack.clients, sleep=no_sleep)
    # Then it says why, starts nothing and exits 2
    assert code == 2
    assert message in capsys.readouterr().err
    assert stack.replays() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--archive", "no-such-archive"], "archive no-such-archive not found"),
        (
            ["--archive", ARCHIVE, "--bus", "another-bus"],
            "EventBridge replays an archive onto its own bus only",
        ),
        (["--stack", "no-such-stack"], "stack no-such-stack not found"),
    ],
)
def test_an_archive_or_bus_that_does_not_fit_is_a_clear_error(
    arguments: list[str], message: str, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", "--since", SINCE, *arguments], replay_clients=stack.clients, sleep=no_sleep)
    assert code == 2
    assert message in capsys.readouterr().err
    assert stack.replays() == []


class OtherStack:
    """A second deployment in the same account: its own bus, archive and stack outputs."""

    NAME = "calendly-sync-other"
    BUS = "calendly-other-bus"
    ARCHIVE = "calendly-other-archive"

    def __init__(self, stack: Stack) -> None:
        self.bus_arn = stack.events.create_event_bus(Name=self.BUS)["EventBusArn"]
        stack.events.create_archive(ArchiveName=self.ARCHIVE, EventSourceArn=self.bus_arn)
        stack.deploy(
            self.NAME,
            {"EventBusName": self.BUS, "EventBusArn": self.bus_arn, "EventArchiveName": self.ARCHIVE},
        )


def every_replay(stack: Stack) -> list[dict[str, Any]]:
    replays: list[dict[str, Any]] = stack.events.list_replays()["Replays"]
    return replays


@pytest.mark.parametrize("stack_option", [["--stack", OtherStack.NAME], []], ids=["--stack", "default-stack"])
def test_an_archive_of_another_stack_is_refused_and_nothing_is_replayed(
    stack_option: list[str], stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given another deployment, named on the command line or deployed under the default name
    other = OtherStack(stack)
    if not stack_option:
        stack.deploy("calendly-sync-dev", {"EventBusArn": other.bus_arn, "EventArchiveName": other.ARCHIVE})

    # When the first stack's archive is asked for with the other stack
    code = main(
        ["replay", "--since", SINCE, *stack_option, "--archive", ARCHIVE],
        replay_clients=stack.clients,
        sleep=no_sleep,
    )

    # Then it is refused, exit 2, saying whose bus the archive keeps, and no replay is started anywhere
    assert code == 2
    err = capsys.readouterr().err
    named = stack_option[1] if stack_option else "calendly-sync-dev"
    assert f"archive {ARCHIVE} is not stack {named}'s: it keeps the events of bus {BUS}" in err
    assert f"the stack's bus is {OtherStack.BUS}" in err
    assert every_replay(stack) == []


def test_an_archive_of_the_stack_named_is_replayed_onto_its_bus(stack: Stack) -> None:
    # Given two deployments, the first one's outputs naming its bus by ARN
    OtherStack(stack)
    stack.deploy("calendly-sync-mine", {"EventBusArn": stack.bus_arn, "EventArchiveName": ARCHIVE})

    # When the first one's archive is named with its own stack
    code = main(
        ["replay", "--since", SINCE, "--stack", "calendly-sync-mine", "--archive", ARCHIVE],
        replay_clients=stack.clients,
        sleep=no_sleep,
    )

    # Then it is replayed, onto that stack's bus only
    assert code == 0
    (replay,) = every_replay(stack)
    assert (
        stack.events.describe_replay(ReplayName=replay["ReplayName"])["Destination"]["Arn"] == stack.bus_arn
    )


def test_an_archive_with_a_stack_named_that_does_not_exist_is_refused(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an archive is named with a stack that is not deployed (a typo, another region)
    code = main(
        ["replay", "--since", SINCE, "--stack", "calendly-sync-typo", "--archive", ARCHIVE],
        replay_clients=stack.clients,
        sleep=no_sleep,
    )

    # Then nothing can show the archive is that stack's: refused, exit 2
    assert code == 2
    assert "stack calendly-sync-typo not found, so the archive cannot be checked" in capsys.readouterr().err
    assert every_replay(stack) == []


def test_a_detail_type_no_rule_can_receive_replays_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no rule that asks for routing form submissions except the catch-all, which is removed
    stack.events.delete_rule(Name="everything-calendly", EventBusName=BUS)
    stack.events.delete_rule(Name="not-cancellations", EventBusName=BUS)
    # When they are replayed
    code = main(
        [
            "replay",
            "--since",
            SINCE,
            "--detail-type",
            "routing_form_submission.created",
            "--archive",
            ARCHIVE,
        ],
        replay_clients=stack.clients,
        sleep=no_sleep,
    )
    # Then nothing is started (a replay without FilterArns would go to every rule)
    assert code == 2
    assert (
        "no rule on bus calendly-test-bus can receive routing_form_submission.created"
        in capsys.readouterr().err
    )
    assert stack.replays() == []


@pytest.mark.parametrize(
    ("pattern", "detail_type", "may_match"),
    [
        ({"source": ["calendly-sync"]}, "invitee.created", True),
        ({"source": ["calendly-sync"], "detail-type": ["invitee.created"]}, "invitee.canceled", False),
        ({"detail-type": [{"prefix": "event_type."}]}, "event_type.deleted", True),
        ({"detail-type": [{"suffix": ".deleted"}]}, "invitee_no_show.deleted", True),
        ({"detail-type": [{"equals-ignore-case": "INVITEE.CREATED"}]}, "invitee.created", True),
        ({"detail-type": [{"anything-but": "invitee.created"}]}, "invitee.created", False),
        ({"source": [{"exists": False}]}, "invitee.created", False),
        # what cannot be decided from the type alone may match: the rule is not left out
        ({"source": ["calendly-sync"], "detail": {"origin": ["poll"]}}, "invitee.created", True),
        ({"detail-type": [{"wildcard": "invitee.*"}]}, "invitee.created", True),
        (
            {"$or": [{"detail-type": ["invitee.created"]}, {"detail-type": ["invitee.canceled"]}]},
            "invitee.canceled",
            True,
        ),
        ({"$or": [{"detail-type": ["invitee.created"]}, {"source": ["billing"]}]}, "invitee.canceled", False),
    ],
)
def test_which_patterns_can_match_a_detail_type(
    pattern: dict[str, Any], detail_type: str, may_match: bool
) -> None:
    assert pattern_may_match(pattern, detail_type) is may_match


def test_the_replay_knows_every_detail_type_the_publisher_sends_and_forwarding_offers() -> None:
    # ops runs with boto3 alone, so it keeps its own list: the same as the layer's and the template's
    assert set(DETAIL_TYPES) == set(DOWNSTREAM_EVENTS)
    forwarded = load_template()["Parameters"]["ForwardDetailTypes"]["Default"].split(",")
    assert sorted(forwarded) == sorted(DETAIL_TYPES)
