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
from calendly_sync.errors import CalendlyUnavailable
from calendly_sync.events import EVENT_TYPE_EVENTS, INVITEE_EVENTS, ROUTING_FORM_EVENTS
from calendly_sync.subscriptions import key_fingerprint
from calendly_sync.table_items import sync_state_key
from local.calendly_sandbox import ALL_SCOPES, CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler
from tests.conftest import SIGNING_KEY, LocalAws

WEBHOOK_URL = "https://hooks-test.execute-api.us-east-1.amazonaws.com/webhooks/calendly"

# Every Calendly webhook the stack knows (calendly_sync.events, the one list): connect subscribes to all.
ALL_EVENTS = set(INVITEE_EVENTS + EVENT_TYPE_EVENTS + ROUTING_FORM_EVENTS)


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


def test_a_member_token_s_checks_name_the_organization_as_well_as_the_user(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a plain member's token, and every list the check asks for recorded
    calendly.add_token(TokenSpec(role="owner"))
    member = calendly.add_token(TokenSpec(role="user"))
    asked: list[tuple[str, dict[str, str]]] = []
    original = CalendlyClient.get

    def recording(self: CalendlyClient, path: str, params: Any = None) -> dict[str, Any]:
        asked.append((path, dict(params or {})))
        return original(self, path, params)

    monkeypatch.setattr(CalendlyClient, "get", recording)

    # When it is validated
    assert validate({"token": member})["valid"] is True

    # Then each of the member's lists names both, so none spans another organization
    lists = [params for path, params in asked if path in ("/event_types", "/scheduled_events")]
    assert len(lists) == 2
    assert all(p.get("organization") == calendly.organization_uri and p.get("user") for p in lists)


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
    assert made["callback_url"].startswith(WEBHOOK_URL + "?v=")
    # and it signs with the stack's current key (the sandbox stores what it was given)
    found = next(iter(calendly.state.subscriptions.values()))
    assert found.signing_key == SIGNING_KEY
    # and the table records it as ours, with the fingerprint of the key it was made with
    record = aws.table.get(sync_state_key("SUBSCRIPTION"))
    assert record is not None and record["uri"] == made["uri"]
    assert json.loads(record["owned"]) == {made["uri"]: key_fingerprint(SIGNING_KEY)}


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


def test_a_409_is_never_adopted_the_url_holder_is_replaced(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given someone subscribes the very URL this run is about to use, with their own key, first
    connect(calendly, role="owner")
    original = CalendlyClient.create_webhook_subscription
    sniped: list[str] = []

    def sniping(self: CalendlyClient, body: Any) -> dict[str, Any]:
        if not sniped:
            sniped.append(original(self, {**body, "signing_key": "someone-elses-key"})["uri"])
        return original(self, body)  # the first time: 409 Already Exists

    monkeypatch.setattr(CalendlyClient, "create_webhook_subscription", sniping)

    # When ensure runs
    answer = subscription("ensure")

    # Then the 409's holder is not adopted: another URL is subscribed with our key and it is deleted
    assert answer["ok"] is True and sniped[0] in answer["deleted"]
    (left,) = calendly.state.subscriptions.values()
    assert left.signing_key == SIGNING_KEY


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


# --- issue 9: every scope, subscriptions only we could have made, rotation safe to retry ---


def signing_keys(aws: LocalAws) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        aws.secretsmanager.get_secret_value(SecretId=aws.signing_key_secret_arn)["SecretString"]
    )
    return value


def put_token_by_hand(aws: LocalAws, token: str) -> None:
    """A token written straight into the secret (no check, no CONNECTION record)."""
    aws.secretsmanager.put_secret_value(
        SecretId=aws.token_secret_arn, SecretString=json.dumps({"token": token})
    )


def test_a_paid_organization_without_routing_forms_read_connects_and_subscribes_the_rest(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a paid organization's owner token created without routing_forms:read
    token = calendly.add_token(TokenSpec(role="owner", scopes=frozenset(ALL_SCOPES) - {"routing_forms:read"}))

    # When it is validated and the subscription ensured
    verdict = validate({"token": token})
    answer = subscription("ensure")

    # Then the token is accepted, the check says what the scope is for, and the subscription has
    # every other event, saying which one was left out and why
    assert verdict["valid"] is True and "routing_forms:read" in verdict["message"]
    (check,) = [c for c in verdict["checks"] if c["name"] == "routing_forms:read"]
    assert check["ok"] is False and check["required"] is False and "routing-form" in check["detail"]
    assert answer["ok"] is True and answer["action"] == "created"
    (made,) = calendly.subscriptions()
    assert set(made["events"]) == ALL_EVENTS - {"routing_form_submission.created"}
    assert any(
        "routing_form_submission.created" in note and "routing_forms:read" in note for note in answer["notes"]
    )
    assert subscription("ensure")["action"] == "kept"


def test_events_whose_scope_a_hand_placed_token_lacks_are_left_out_after_calendly_s_400(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a token put in the secret by hand (never checked), without event_types:read
    put_token_by_hand(
        aws, calendly.add_token(TokenSpec(role="owner", scopes=frozenset(ALL_SCOPES) - {"event_types:read"}))
    )

    # When ensure runs, and Calendly answers the full subscription with 400
    answer = subscription("ensure")

    # Then the events the token allows are subscribed, and the note names the scope and the 400
    assert answer["ok"] is True
    (made,) = calendly.subscriptions()
    assert set(made["events"]) == ALL_EVENTS - {
        "event_type.created",
        "event_type.updated",
        "event_type.deleted",
    }
    (note,) = [n for n in answer["notes"] if n.startswith("left out")]
    assert "event_types:read" in note and "400" in note
    # and the next run remembers instead of asking again
    calendly.reset_counts()
    assert subscription("ensure")["action"] == "kept" and calendly.requests_count(method="POST") == 0


def test_a_token_without_any_event_scope_is_refused_with_the_reason(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    event_scopes = {"scheduled_events:read", "event_types:read", "routing_forms:read"}
    put_token_by_hand(
        aws, calendly.add_token(TokenSpec(role="owner", scopes=frozenset(ALL_SCOPES) - event_scopes))
    )

    answer = subscription("ensure")

    assert answer["ok"] is False and "no webhook event can be subscribed" in answer["message"]
    assert "scheduled_events:read" in answer["message"] and calendly.subscriptions() == []


def test_a_planted_subscription_with_our_url_and_fingerprint_is_replaced_not_kept(
    aws: LocalAws, calendly: CalendlySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Given our subscription, and another admin's subscription to our URL that copies the old
    # query (our key's fingerprint, a higher version) but signs with the admin's own key
    connect(calendly, role="owner")
    ours = subscription("ensure")["subscription"]["uri"]
    other_admin = CalendlyClient(calendly.base_url, calendly.add_token(TokenSpec(role="admin")))
    planted = other_admin.create_webhook_subscription(
        {
            "url": f"{WEBHOOK_URL}?key={key_fingerprint(SIGNING_KEY)}&v=99999999T999999999999ffff",
            "events": sorted(ALL_EVENTS),
            "organization": calendly.organization_uri,
            "scope": "organization",
            "signing_key": "the-other-admins-key",
        }
    )["uri"]

    # When ensure runs
    answer = subscription("ensure")

    # Then ours is kept, the planted one is deleted and reported, and the alarm is raised
    assert answer["ok"] is True and answer["subscription"]["uri"] == ours and answer["deleted"] == [planted]
    assert any(planted in note and "not made by this stack" in note for note in answer["notes"])
    (left,) = calendly.state.subscriptions.values()
    assert left.signing_key == SIGNING_KEY
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any(planted in json.dumps(r.__dict__, default=str) for r in warnings)


def test_a_subscription_recreated_with_our_exact_url_and_another_key_is_replaced_create_first(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given another admin deleted ours and re-created one with the exact same callback URL
    connect(calendly, role="owner")
    ours = subscription("ensure")["subscription"]
    other_admin = CalendlyClient(calendly.base_url, calendly.add_token(TokenSpec(role="admin")))
    other_admin.delete_webhook_subscription(ours["uri"])
    impostor = other_admin.create_webhook_subscription(
        {
            "url": ours["callback_url"],
            "events": ours["events"],
            "organization": calendly.organization_uri,
            "scope": "organization",
            "signing_key": "the-other-admins-key",
        }
    )["uri"]
    assert subscription("status")["ok"] is False
    calendly.reset_counts()

    # When ensure runs
    answer = subscription("ensure")

    # Then a subscription with our key is created first, then the impostor is deleted
    assert answer["action"] == "replaced" and answer["deleted"] == [impostor]
    writes = [r.method for r in calendly.request_log if r.method in ("POST", "DELETE")]
    assert writes == ["POST", "DELETE"]
    (left,) = calendly.state.subscriptions.values()
    assert left.signing_key == SIGNING_KEY


def test_without_a_record_every_subscription_to_our_url_is_replaced_create_first(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given our subscription, but a table that lost (or never had) the record of it
    connect(calendly, role="owner")
    old = subscription("ensure")["subscription"]["uri"]
    record_key = sync_state_key("SUBSCRIPTION")
    aws.dynamodb.delete_item(
        TableName=aws.table_name, Key={"pk": {"S": record_key.pk}, "sk": {"S": record_key.sk}}
    )
    calendly.reset_counts()

    # When ensure runs, then it cannot prove the old one is ours: a new one first, then the old gone
    answer = subscription("ensure")
    assert answer["action"] == "replaced" and answer["deleted"] == [old]
    assert [r.method for r in calendly.request_log if r.method in ("POST", "DELETE")] == ["POST", "DELETE"]
    assert len(calendly.subscriptions()) == 1


def test_rotate_key_during_an_outage_says_so_and_its_retry_keeps_the_live_key(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a subscription signing with the current key
    connect(calendly, role="owner")
    live = subscription("ensure")["subscription"]["uri"]

    # When rotate-key runs while Calendly cannot create subscriptions
    original = CalendlyClient.create_webhook_subscription

    def unavailable(self: CalendlyClient, body: Any) -> dict[str, Any]:
        raise CalendlyUnavailable("Calendly answered 503 to POST /webhook_subscriptions")

    monkeypatch.setattr(CalendlyClient, "create_webhook_subscription", unavailable)
    failed = subscription("rotate-key")

    # Then the answer says the key was not rotated, and the current key is still the live one's
    assert failed["ok"] is False and "not rotated" in failed["message"]
    assert "nothing was changed" not in failed["message"]
    keys = signing_keys(aws)
    assert keys["current"] == SIGNING_KEY and keys["next"] != SIGNING_KEY
    assert [s["uri"] for s in calendly.subscriptions()] == [live]

    # When the advised retry runs with Calendly back
    monkeypatch.setattr(CalendlyClient, "create_webhook_subscription", original)
    retried = subscription("rotate-key")

    # Then the waiting key became current, and the key the live subscription signs with is kept
    assert retried["ok"] is True and retried["action"] == "rotated"
    after = signing_keys(aws)
    assert after["current"] == keys["next"] and after["previous"] == SIGNING_KEY and "next" not in after
    signing = {s.uuid: s.signing_key for s in calendly.state.subscriptions.values()}
    assert set(signing.values()) == {SIGNING_KEY, keys["next"]}


def test_a_second_rotation_waits_while_the_previous_key_is_in_use(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a rotation under way (the old subscription still in its grace period)
    connect(calendly, role="owner")
    subscription("ensure")
    assert subscription("rotate-key")["action"] == "rotated"
    keys = signing_keys(aws)

    # When rotate-key runs again at once
    answer = subscription("rotate-key")

    # Then it is refused and no key changes (a second rotation would drop the old subscription's key)
    assert answer["ok"] is False and "has not finished" in answer["message"]
    assert signing_keys(aws) == keys and len(calendly.subscriptions()) == 2


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


def test_the_receiver_accepts_a_delivery_signed_with_a_rotation_s_next_key(aws: LocalAws) -> None:
    # Given a rotation that wrote its new key as 'next' (its subscription may already sign with it)
    from local.lambda_runtime import resign_event
    from tests.conftest import sample_event

    aws.secretsmanager.put_secret_value(
        SecretId=aws.signing_key_secret_arn,
        SecretString=json.dumps({"current": SIGNING_KEY, "next": "the-rotations-new-key"}),
    )

    # When a delivery signed with that key arrives
    event = resign_event(sample_event("invitee_created"), "the-rotations-new-key")
    response = load_handler("ReceiveWebhookFunction")(event, FakeLambdaContext())

    # Then it is accepted
    assert response["statusCode"] == 200
