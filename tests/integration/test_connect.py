"""ValidateCredentialsFunction and WebhookSubscriptionFunction against the Calendly sandbox.

AWS is moto (in-process); Calendly is the sandbox on loopback, reached through
CALENDLY_API_BASE_URL exactly as the deployed functions reach api.calendly.com.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.records import sync_state_key
from calendly_sync.subscriptions import key_fingerprint
from local.calendly_sandbox import ALL_SCOPES, CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler
from tests.conftest import SIGNING_KEY, LocalAws

ALL_EVENTS = {
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
    "event_type.created",
    "event_type.updated",
    "event_type.deleted",
    "routing_form_submission.created",
}


def validate(payload: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("ValidateCredentialsFunction")(payload, FakeLambdaContext())
    return answer


def subscription(action: str | None = "ensure") -> dict[str, Any]:
    payload = {} if action is None else {"action": action}
    answer: dict[str, Any] = load_handler("WebhookSubscriptionFunction")(payload, FakeLambdaContext())
    return answer


def stored_secret(aws: LocalAws) -> dict[str, Any] | None:
    try:
        value = aws.secretsmanager.get_secret_value(SecretId=aws.token_secret_arn)["SecretString"]
    except aws.secretsmanager.exceptions.ResourceNotFoundException:
        return None
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def connect(calendly: CalendlySandbox, **spec: Any) -> str:
    token = calendly.add_token(TokenSpec(**spec))
    assert validate({"token": token})["valid"] is True
    return token


# --- ValidateCredentialsFunction -------------------------------------------------------


def test_a_valid_owner_token_is_saved_with_its_connection(
    aws: LocalAws, calendly: CalendlySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an owner's token with every scope
    token = calendly.add_token(TokenSpec(role="owner"))

    # When it is validated
    answer = validate({"token": token})

    # Then the verdict is positive, names user and organization, and the token is saved
    assert answer["valid"] is True and answer["saved"] is True
    assert answer["message"] == "Connection Saved Successfully!"
    assert answer["organization"] == calendly.organization_uri and answer["scope"] == "organization"
    assert all(check["ok"] for check in answer["checks"])
    assert {c["name"] for c in answer["checks"]} >= {"token", "scheduled_events:read", "webhooks:write"}
    assert stored_secret(aws)["token"] == token  # type: ignore[index]
    connection = aws.table.get(sync_state_key("CONNECTION"))
    assert connection is not None and connection["role"] == "owner" and connection["healthy"] is True
    # and the token is never returned or logged
    assert token not in json.dumps(answer)
    assert token not in "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)


@pytest.mark.parametrize(
    ("state", "phrase"),
    [("expired", "has expired"), ("revoked", "was revoked")],
)
def test_expired_and_revoked_tokens_are_named_as_such(
    aws: LocalAws, calendly: CalendlySandbox, state: str, phrase: str
) -> None:
    token = calendly.add_token(TokenSpec(state=state))  # type: ignore[arg-type]
    answer = validate({"token": token})
    assert answer["valid"] is False and phrase in answer["message"] and answer["saved"] is False
    assert stored_secret(aws) is None


def test_an_unknown_token_is_refused_and_nothing_is_saved(aws: LocalAws, calendly: CalendlySandbox) -> None:
    answer = validate({"token": "not-a-real-token"})
    assert answer["valid"] is False and "does not recognise the token" in answer["message"]
    assert stored_secret(aws) is None


@pytest.mark.parametrize(
    "missing", ["scheduled_events:read", "webhooks:write", "event_types:read", "organizations:read"]
)
def test_a_missing_scope_is_named(aws: LocalAws, calendly: CalendlySandbox, missing: str) -> None:
    # Given a token created without one scope the stack needs
    scopes = frozenset(ALL_SCOPES) - {missing}
    token = calendly.add_token(TokenSpec(role="owner", scopes=scopes))

    # Then the verdict names exactly that scope, and nothing is saved
    answer = validate({"token": token})
    assert answer["valid"] is False and f"missing scope {missing}" in answer["message"]
    assert [c["name"] for c in answer["checks"] if not c["ok"]] == [missing]
    assert stored_secret(aws) is None


def test_a_non_admin_token_works_with_user_scope_and_says_so(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    token = calendly.add_token(TokenSpec(role="owner"))
    member = calendly.add_token(TokenSpec(role="user"))
    del token
    answer = validate({"token": member})
    assert answer["valid"] is True and answer["scope"] == "user" and answer["role"] == "user"
    assert "user scope" in answer["message"]


def test_a_failed_check_never_overwrites_a_working_token(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given a working token saved
    good = connect(calendly, role="owner")

    # When someone tries a bad one
    answer = validate({"token": "typo-token"})

    # Then the bad one is refused and the working one is still the stored one
    assert answer["valid"] is False
    assert stored_secret(aws)["token"] == good  # type: ignore[index]


def test_a_recheck_reports_a_token_revoked_since_without_deleting_it(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a saved token that still works
    token = connect(calendly, role="owner")
    assert validate({})["valid"] is True

    # When it is revoked in Calendly and re-checked
    calendly.set_token_state(token, "revoked")
    answer = validate({})

    # Then the verdict says so, the secret is untouched and the connection is marked failing
    assert answer["valid"] is False and "revoked" in answer["message"]
    assert stored_secret(aws)["token"] == token  # type: ignore[index]
    connection = aws.table.get(sync_state_key("CONNECTION"))
    assert connection is not None and connection["healthy"] is False


@pytest.mark.parametrize("payload", [{"token": ""}, {"token": 42}, {"token": "two words"}, {"tokn": "x"}, []])
def test_bad_input_gets_a_clear_refusal(aws: LocalAws, calendly: CalendlySandbox, payload: Any) -> None:
    answer = validate(payload)
    assert answer["valid"] is False and answer["saved"] is False and answer["message"]


def test_a_recheck_with_nothing_stored_says_to_connect_first(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    assert "connect first" in validate({})["message"]


# --- WebhookSubscriptionFunction ----------------------------------------------------------


def test_ensure_creates_the_organization_subscription_with_the_current_key(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a connected owner token
    connect(calendly, role="owner")

    # When ensure runs (the default action)
    answer = subscription(None)

    # Then a subscription with every event, organization scope and the stack's URL exists
    assert answer["ok"] is True and answer["action"] == "created"
    (made,) = calendly.subscriptions()
    assert made["scope"] == "organization" and set(made["events"]) == ALL_EVENTS
    assert made["callback_url"].startswith(
        "https://hooks-test.execute-api.us-east-1.amazonaws.com/webhooks/calendly?"
    )
    assert f"key={key_fingerprint(SIGNING_KEY)}" in made["callback_url"]
    # and it signs with the stack's current key (the sandbox stores what it was given)
    found = next(iter(calendly.state.subscriptions.values()))
    assert found.signing_key == SIGNING_KEY
    assert aws.table.get(sync_state_key("SUBSCRIPTION"))["uri"] == made["uri"]  # type: ignore[index]


def test_ensure_twice_changes_nothing_the_second_time(aws: LocalAws, calendly: CalendlySandbox) -> None:
    connect(calendly, role="owner")
    subscription("ensure")
    calendly.reset_counts()

    answer = subscription("ensure")

    assert answer["action"] == "kept" and answer["deleted"] == []
    assert calendly.requests_count(method="POST") == 0 and calendly.requests_count(method="DELETE") == 0
    assert len(calendly.subscriptions()) == 1


def test_a_disabled_subscription_is_replaced_create_first(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given our subscription was disabled by Calendly after failing deliveries
    connect(calendly, role="owner")
    old = subscription("ensure")["subscription"]["uri"]
    calendly.disable_subscription(old)
    calendly.reset_counts()

    # When ensure runs
    answer = subscription("ensure")

    # Then a new active one exists, the old one is gone, and the new one was made first
    assert answer["action"] == "replaced" and answer["deleted"] == [old]
    (current,) = calendly.subscriptions()
    assert current["state"] == "active" and current["uri"] != old
    writes = [(r.method, r.path) for r in calendly.request_log if r.method in ("POST", "DELETE")]
    assert [method for method, _ in writes] == ["POST", "DELETE"]


def test_a_subscription_made_with_another_key_is_replaced(aws: LocalAws, calendly: CalendlySandbox) -> None:
    connect(calendly, role="owner")
    old = subscription("ensure")["subscription"]["uri"]
    aws.set_signing_keys("a-brand-new-current-key")

    answer = subscription("ensure")

    assert answer["action"] == "replaced" and old in answer["deleted"]
    assert any("another signing key" in note for note in answer["notes"])


def test_a_409_from_a_concurrent_run_is_adopted(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another run creates the very same subscription a moment before this one does
    connect(calendly, role="owner")
    original = CalendlyClient.create_webhook_subscription

    def racing(self: CalendlyClient, body: Any) -> dict[str, Any]:
        original(self, body)  # the other run wins the race
        return original(self, body)  # ours gets 409 Already Exists

    monkeypatch.setattr(CalendlyClient, "create_webhook_subscription", racing)

    # When ensure runs
    answer = subscription("ensure")

    # Then the 409 is looked up and adopted, and there is exactly one subscription
    assert answer["ok"] is True and any("adopted" in note for note in answer["notes"])
    assert len(calendly.subscriptions()) == 1


def test_ours_is_found_on_page_three_of_the_list(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given 210 other subscriptions in the organization, made before ours
    token = connect(calendly, role="owner")
    client = CalendlyClient(calendly.base_url, token)
    for index in range(210):
        client.create_webhook_subscription(
            {
                "url": f"https://other-{index}.example/hook",
                "events": ["invitee.created"],
                "organization": calendly.organization_uri,
                "scope": "organization",
            }
        )
    subscription("ensure")
    calendly.reset_counts()

    # When ensure runs again, then it finds ours past page two and creates nothing
    answer = subscription("ensure")
    assert answer["action"] == "kept"
    assert calendly.requests_count(method="GET", path_prefix="/webhook_subscriptions") == 3
    assert calendly.requests_count(method="POST") == 0


def test_delete_removes_ours_only_and_is_idempotent(aws: LocalAws, calendly: CalendlySandbox) -> None:
    token = connect(calendly, role="owner")
    CalendlyClient(calendly.base_url, token).create_webhook_subscription(
        {
            "url": "https://someone-else.example/hook",
            "events": ["invitee.created"],
            "organization": calendly.organization_uri,
            "scope": "organization",
        }
    )
    subscription("ensure")

    first, second = subscription("delete"), subscription("delete")

    assert first["ok"] is True and len(first["deleted"]) == 1
    assert (
        second["ok"] is True and second["deleted"] == [] and second["message"] == "no subscription to delete"
    )
    assert [s["callback_url"] for s in calendly.subscriptions()] == ["https://someone-else.example/hook"]


def test_a_free_plan_subscribes_without_routing_forms_and_remembers(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    connect(calendly, role="owner", plan="free")

    answer = subscription("ensure")
    again = subscription("ensure")

    assert answer["ok"] is True and any("paid Calendly plan" in note for note in answer["notes"])
    (made,) = calendly.subscriptions()
    assert set(made["events"]) == ALL_EVENTS - {"routing_form_submission.created"}
    assert again["action"] == "kept"


def test_a_non_admin_subscribes_with_user_scope(aws: LocalAws, calendly: CalendlySandbox) -> None:
    calendly.add_token(TokenSpec(role="owner"))
    connect(calendly, role="user")

    answer = subscription("ensure")

    assert answer["ok"] is True
    (made,) = calendly.subscriptions()
    assert made["scope"] == "user" and "routing_form_submission.created" not in made["events"]


def test_status_reports_state_retry_and_whether_it_matches(aws: LocalAws, calendly: CalendlySandbox) -> None:
    connect(calendly, role="owner")
    assert subscription("status")["ok"] is False  # nothing yet
    uri = subscription("ensure")["subscription"]["uri"]
    assert subscription("status")["subscription"]["matches"] is True
    calendly.disable_subscription(uri)

    answer = subscription("status")

    assert answer["ok"] is False and answer["subscription"]["state"] == "disabled"
    assert answer["subscription"]["retry_started_at"] is not None
    assert any("state is disabled" in p for p in answer["subscription"]["problems"])


def test_without_a_token_subscription_actions_say_to_connect_first(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    answer = subscription("ensure")
    assert answer["ok"] is False and "connect first" in answer["message"]


def test_an_unknown_action_is_refused_clearly(aws: LocalAws, calendly: CalendlySandbox) -> None:
    answer = subscription("frobnicate")
    assert answer["ok"] is False and "unknown action" in answer["message"]


def test_calendly_down_changes_nothing_and_says_so(aws: LocalAws, calendly: CalendlySandbox) -> None:
    connect(calendly, role="owner")
    subscription("ensure")
    calendly.faults.server_errors = 5

    answer = subscription("ensure")

    assert answer["ok"] is False and "try again" in answer["message"]
    assert len(calendly.subscriptions()) == 1


# --- the opt-in custom resource ------------------------------------------------------------


@pytest.fixture
def cloudformation_responses() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for CloudFormation's pre-signed response URL, recording each answer."""
    import threading

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    received: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        received.append(json.loads(Request(environ).get_data()))
        return Response("")(environ, start_response)

    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()


def custom_resource_event(request_type: str, response_url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/calendly-sync-dev/1",
        "RequestId": f"request-{request_type}",
        "LogicalResourceId": "WebhookSubscription",
        "ResourceType": "Custom::CalendlyWebhookSubscription",
        "ResourceProperties": {},
    }


def test_deploy_ensures_and_delete_removes_the_subscription(
    aws: LocalAws, calendly: CalendlySandbox, cloudformation_responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = cloudformation_responses
    connect(calendly, role="owner")
    handler = load_handler("WebhookSubscriptionFunction")

    # When the stack is created, then the subscription exists and CloudFormation hears SUCCESS
    handler(custom_resource_event("Create", url), FakeLambdaContext())
    assert len(calendly.subscriptions()) == 1
    # When the stack is deleted, then the subscription is gone and CloudFormation hears SUCCESS
    handler(custom_resource_event("Delete", url), FakeLambdaContext())
    assert calendly.subscriptions() == []

    assert [(r["Status"], r["RequestId"], r["Data"]["Action"]) for r in received] == [
        ("SUCCESS", "request-Create", "created"),
        ("SUCCESS", "request-Delete", "deleted"),
    ]
    assert {r["PhysicalResourceId"] for r in received} == {"calendly-webhook-subscription"}


def test_a_calendly_outage_never_fails_the_stack(
    aws: LocalAws, calendly: CalendlySandbox, cloudformation_responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = cloudformation_responses
    connect(calendly, role="owner")
    calendly.faults.server_errors = 10

    load_handler("WebhookSubscriptionFunction")(custom_resource_event("Update", url), FakeLambdaContext())

    ((answer,),) = [received]
    assert answer["Status"] == "SUCCESS" and answer["Data"]["Ok"] == "False"
    assert "try again" in answer["Reason"]


def test_deploying_before_any_token_is_connected_still_succeeds(
    aws: LocalAws, calendly: CalendlySandbox, cloudformation_responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = cloudformation_responses
    load_handler("WebhookSubscriptionFunction")(custom_resource_event("Create", url), FakeLambdaContext())
    assert received[0]["Status"] == "SUCCESS" and "connect first" in received[0]["Reason"]
