"""The operator CLI against a fake invoker: what each command sends, prints and exits with."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ops import FunctionFailed, OpsError
from ops.cli import main
from ops.render import render_subscription, render_validation
from tests.ops.helpers import (
    ORGANIZATION,
    SUBSCRIPTION,
    TOKEN,
    USER,
    FakeInvoker,
    Terminal,
    Unreadable,
    subscription_answer,
    validation_answer,
)

VALIDATE = "ValidateCredentialsFunction"
SUBSCRIBE = "WebhookSubscriptionFunction"


@pytest.fixture(autouse=True)
def no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALENDLY_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin", Unreadable())


def both_invokers() -> FakeInvoker:
    return FakeInvoker({VALIDATE: validation_answer(), SUBSCRIBE: subscription_answer()})


# --- what each command sends -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "action"), [("subscribe", "ensure"), ("status", "status"), ("rotate-key", "rotate-key")]
)
def test_subscription_commands_send_their_action(
    command: str, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose subscription function answers ok
    invoker = both_invokers()

    # When the command runs
    code = main([command], invoker=invoker)

    # Then exactly one call went to WebhookSubscriptionFunction with the command's action
    assert invoker.calls == [(SUBSCRIBE, {"action": action})]
    assert code == 0
    assert "subscription active" in capsys.readouterr().out


@pytest.mark.parametrize("source", ["environment", "pipe"])
def test_connect_sends_the_token_it_is_given_and_never_prints_it(
    source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the token in CALENDLY_TOKEN (standard input must not be touched), or piped on
    # standard input (as in `pass calendly | python -m ops connect`)
    if source == "environment":
        monkeypatch.setenv("CALENDLY_TOKEN", f"  {TOKEN}\n")
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(TOKEN + "\n"))
    invoker = both_invokers()

    # When connect runs
    code = main(["connect"], invoker=invoker)

    # Then ValidateCredentialsFunction got the token, trimmed, and the output never shows it
    assert invoker.calls == [(VALIDATE, {"token": TOKEN})]
    assert code == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert "token valid" in out and ORGANIZATION in out


def test_connect_prompts_without_echo_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a terminal on standard input, where the person types the token at a hidden prompt
    monkeypatch.setattr("sys.stdin", Terminal())
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return TOKEN

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    invoker = both_invokers()

    # When connect runs
    code = main(["connect"], invoker=invoker)

    # Then getpass asked once and its answer was sent
    assert len(prompts) == 1 and "Token" in prompts[0]
    assert invoker.calls == [(VALIDATE, {"token": TOKEN})]
    assert code == 0
    assert TOKEN not in "".join(capsys.readouterr())


def test_connect_recheck_sends_an_empty_payload_without_reading_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a token in the environment that must be ignored (and unreadable stdin)
    monkeypatch.setenv("CALENDLY_TOKEN", TOKEN)
    invoker = both_invokers()

    # When connect --recheck runs
    code = main(["connect", "--recheck"], invoker=invoker)

    # Then the stored token is re-checked: the payload is {}
    assert invoker.calls == [(VALIDATE, {})]
    assert code == 0


@pytest.mark.parametrize(
    "argv", [["connect", TOKEN], ["connect", "--token", TOKEN], [TOKEN], ["connect", "-"]]
)
def test_a_token_cannot_be_given_as_an_argument_and_is_not_echoed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given someone trying to pass the token on the command line
    invoker = both_invokers()

    # When the CLI parses it
    code = main(argv, invoker=invoker)

    # Then argparse refuses it (usage error), nothing is invoked, and the value is not repeated
    assert code == 2
    assert invoker.calls == []
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    assert "error" in err


def test_no_token_at_all_is_a_usage_error_naming_where_to_put_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given neither CALENDLY_TOKEN nor anything on standard input
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    invoker = both_invokers()

    # When connect runs
    code = main(["connect"], invoker=invoker)

    # Then nothing is invoked and the message says where a token comes from
    assert code == 2
    assert invoker.calls == []
    assert "CALENDLY_TOKEN" in capsys.readouterr().err


def test_several_lines_on_stdin_are_refused_without_quoting_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file with more than the token piped in
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TOKEN}\nsomething else\n"))
    invoker = both_invokers()

    # When connect runs
    code = main(["connect"], invoker=invoker)

    # Then it is a usage error that does not repeat the input
    assert code == 2
    assert invoker.calls == []
    assert TOKEN not in "".join(capsys.readouterr())


def test_a_function_that_echoes_the_token_still_does_not_get_it_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a (misbehaving) function whose answer and error quote the token
    monkeypatch.setenv("CALENDLY_TOKEN", TOKEN)
    answer = validation_answer(valid=False) | {"message": f"bad token {TOKEN}"}
    invoker = FakeInvoker({VALIDATE: answer})

    # When connect runs, as text and as JSON, and then the function fails quoting it
    first = main(["connect"], invoker=invoker)
    second = main(["connect", "--json"], invoker=invoker)
    invoker.answers[VALIDATE] = FunctionFailed(VALIDATE, "ValueError", f"cannot parse {TOKEN}")
    third = main(["connect"], invoker=invoker)

    # Then the token is replaced in everything written, which stays readable (and parseable)
    out, err = capsys.readouterr()
    assert (first, second, third) == (1, 1, 2)
    assert TOKEN not in out + err
    assert "[redacted]" in out and "[redacted]" in err
    assert json.loads(out[out.index("{") :])["message"] == "bad token [redacted]"


# --- exit codes and output -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "answers", "expected"),
    [
        (["connect", "--recheck"], {VALIDATE: validation_answer(valid=True)}, 0),
        (["connect", "--recheck"], {VALIDATE: validation_answer(valid=False)}, 1),
        (["connect", "--recheck"], {VALIDATE: {"message": "no verdict"}}, 1),
        (["status"], {SUBSCRIBE: subscription_answer(ok=True)}, 0),
        (["status"], {SUBSCRIBE: subscription_answer(ok=False)}, 1),
        (
            ["status"],
            {SUBSCRIBE: OpsError("stack calendly-sync-dev in us-east-1 not found: check --stack")},
            2,
        ),
        (["status"], {SUBSCRIBE: FunctionFailed(SUBSCRIBE, "KeyError", "'organization'")}, 2),
        (["status"], {SUBSCRIBE: RuntimeError("something unexpected")}, 2),
        (["statuz"], {}, 2),
        ([], {}, 2),
        (["status", "--region"], {}, 2),
        (["--help"], {}, 0),
    ],
)
def test_exit_codes(argv: list[str], answers: dict[str, Any], expected: int) -> None:
    # Given a function answering (or failing) as listed
    invoker = FakeInvoker(answers)

    # When the command runs
    code = main(argv, invoker=invoker)

    # Then the exit code is 0 for worked, 1 for a reported problem, 2 for usage / unreachable
    assert code == expected


def test_unreachable_stack_message_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a stack that cannot be found
    invoker = FakeInvoker({SUBSCRIBE: OpsError("stack x in eu-west-1 not found: check --stack and --region")})

    # When status runs
    code = main(["status"], invoker=invoker)

    # Then stdout is empty and stderr says what to check
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "check --stack and --region" in err


def test_function_error_surfaces_its_error_message(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the function raising instead of answering
    invoker = FakeInvoker(
        {SUBSCRIBE: FunctionFailed(SUBSCRIBE, "CalendlyError", "GET /users/me answered 401", "see sam logs")}
    )

    # When subscribe runs
    code = main(["subscribe"], invoker=invoker)

    # Then the error names the function, its error type and message
    err = capsys.readouterr().err
    assert code == 2
    assert SUBSCRIBE in err and "CalendlyError" in err and "GET /users/me answered 401" in err


@pytest.mark.parametrize("argv", [["status", "--json"], ["--json", "status"]])
def test_json_prints_the_answer_itself(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a subscription answer (with a key this CLI does not know yet)
    answer = subscription_answer(ok=False) | {"newer_key": {"x": 1}}
    invoker = FakeInvoker({SUBSCRIBE: answer})

    # When status runs with --json, before or after the command
    code = main(argv, invoker=invoker)

    # Then stdout is exactly the answer as JSON, and the exit code still follows `ok`
    assert json.loads(capsys.readouterr().out) == answer
    assert code == 1


def test_stack_and_region_options_are_accepted_before_or_after_the_command() -> None:
    # Given a fake invoker (so no AWS is needed)
    invoker = both_invokers()

    # When the options come on either side of the command
    codes = [
        main(["--stack", "calendly-sync-prod", "--region", "eu-west-1", "status"], invoker=invoker),
        main(["status", "--stack", "calendly-sync-prod", "--region", "eu-west-1"], invoker=invoker),
    ]

    # Then both parse and run
    assert codes == [0, 0]
    assert len(invoker.calls) == 2


def test_without_an_invoker_main_builds_a_stack_invoker_from_the_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given StackInvoker replaced by a recorder
    built: list[tuple[str, str | None]] = []

    class RecordingStackInvoker(FakeInvoker):
        def __init__(self, stack_name: str, region: str | None) -> None:
            built.append((stack_name, region))
            super().__init__({SUBSCRIBE: subscription_answer()})

    monkeypatch.setattr("ops.cli.StackInvoker", RecordingStackInvoker)

    # When status runs with and without options
    main(["status"])
    main(["status", "--stack", "calendly-sync-prod", "--region", "eu-central-1"])

    # Then the samconfig default stack and the AWS environment's region are used unless given
    assert built == [("calendly-sync-dev", None), ("calendly-sync-prod", "eu-central-1")]


# --- rendering ------------------------------------------------------------------------------


def test_validation_renders_message_checks_and_identity() -> None:
    # Given a failed validation with checks
    answer = validation_answer(valid=False)

    # When it is rendered
    text = render_validation(answer)

    # Then the message, one marked line per check, and the identity appear
    lines = text.splitlines()
    assert lines[0].startswith("✗") and "not an admin" in lines[0]
    assert any(line.strip().startswith("✓ users/me") for line in lines)
    assert any(line.strip().startswith("✗ organization role") and "role is user" in line for line in lines)
    assert USER in text and "user" in text
    assert "organization " not in text.replace("organization role", "")  # null organization is left out


def test_subscription_renders_state_problems_deleted_and_notes() -> None:
    # Given a subscription that is disabled and retrying
    answer = subscription_answer(ok=False, action="status") | {"deleted": ["https://x/old"]}

    # When it is rendered
    text = render_subscription(answer)

    # Then each part is shown
    assert text.splitlines()[0].startswith("✗")
    for expected in (
        "status",
        SUBSCRIPTION,
        "disabled",
        "invitee.created, invitee.canceled",
        "2026-01-02T03:04:05.000000Z",
        "state is disabled",
        "https://x/old",
        "created before deleting",
    ):
        assert expected in text
    assert any(line.split() == ["matches", "stack", "no"] for line in text.splitlines())


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"ok": True},
        {"ok": True, "subscription": None},
        {"ok": True, "subscription": {"uri": SUBSCRIPTION}, "deleted": None, "notes": "one note"},
        {"ok": True, "subscription": {"events": None, "problems": None}, "extra": [1, 2]},
    ],
)
def test_subscription_rendering_tolerates_missing_and_new_keys(answer: dict[str, Any]) -> None:
    # Given answers missing keys or carrying new ones
    # When they are rendered
    text = render_subscription(answer)

    # Then a verdict line comes out, without error
    assert text.splitlines()[0].split()[0] in {"✓", "✗"}


@pytest.mark.parametrize(
    "answer", [{}, {"valid": True, "checks": None}, {"valid": False, "checks": ["odd", {"ok": True}]}]
)
def test_validation_rendering_tolerates_missing_keys(answer: dict[str, Any]) -> None:
    # Given answers missing keys or with odd checks
    # When they are rendered
    text = render_validation(answer)

    # Then a verdict line comes out, without error
    assert "token" in text.splitlines()[0]


def test_plain_marks_when_the_terminal_cannot_show_unicode() -> None:
    # Given a terminal without Unicode
    # When a validation is rendered for it
    text = render_validation(validation_answer(valid=False), unicode=False)

    # Then ASCII marks are used
    assert text.isascii() and text.startswith("FAIL")


def test_an_optional_scope_the_token_lacks_is_shown_as_optional_not_as_a_failure() -> None:
    # Given a valid token without routing_forms:read (its events are left out, nothing refused)
    answer = validation_answer(valid=True) | {
        "checks": [
            {"name": "webhooks:write", "ok": True, "detail": "granted", "required": True},
            {
                "name": "routing_forms:read",
                "ok": False,
                "detail": "missing scope routing_forms:read, needed for routing-form submissions",
                "required": False,
            },
        ]
    }

    # When it is rendered, with and without unicode
    fancy, plain = render_validation(answer), render_validation(answer, unicode=False)

    # Then the optional check is marked as optional, never with the failure mark
    (line,) = [line for line in fancy.splitlines() if "routing_forms:read" in line]
    assert line.strip().startswith("– routing_forms:read (optional)") and "✗" not in fancy
    assert "FAIL" not in plain and "opt  routing_forms:read (optional)" in plain


def test_a_subscription_the_stack_did_not_make_is_shown_as_such() -> None:
    # Given a status answer about a subscription to our URL that the stack did not make
    answer = subscription_answer(ok=False, action="status")
    answer["subscription"] |= {"made_by_this_stack": False}

    # When it is rendered, then it says so
    assert any(
        line.strip().startswith("made by stack") and line.strip().endswith("no")
        for line in render_subscription(answer).splitlines()
    )
