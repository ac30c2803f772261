"""Authentication, scopes and roles: the sandbox refuses what Calendly refuses, with Calendly's bodies."""

from __future__ import annotations

import pytest

from local.calendly_sandbox import ALL_SCOPES, CalendlySandbox, TokenSpec
from tests.sandbox.helpers import Api


def test_missing_token_is_unauthenticated_with_rate_limit_headers(sandbox: CalendlySandbox) -> None:
    # Given a client without a token
    client = Api(sandbox.base_url, token=None)

    # When it asks who it is
    response = client.get("/users/me")

    # Then it gets Calendly's 401 body, still with the rate-limit headers every response carries
    assert response.status_code == 401
    assert response.json() == {"title": "Unauthenticated", "message": "The access token is invalid"}
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(response.headers)


@pytest.mark.parametrize(
    ("state", "message"),
    [("expired", "The access token is expired"), ("revoked", "The access token was revoked")],
)
def test_expired_and_revoked_tokens_are_told_apart(
    sandbox: CalendlySandbox, state: str, message: str
) -> None:
    # Given a token created in that state
    token = sandbox.add_token(TokenSpec(state=state))  # type: ignore[arg-type]

    # When it is used
    response = Api(sandbox.base_url, token).get("/users/me")

    # Then the 401 says why
    assert response.status_code == 401
    assert response.json() == {"title": "Unauthenticated", "message": message}


def test_unknown_token_and_token_revoked_later(sandbox: CalendlySandbox, api: Api, owner_token: str) -> None:
    # Given a token that works
    assert api.get("/users/me").status_code == 200

    # When an unknown token is used, and the working one is revoked
    unknown = api.get("/users/me", token="not-a-token")
    sandbox.set_token_state(owner_token, "revoked")
    revoked = api.get("/users/me")

    # Then both are refused
    assert unknown.json()["message"] == "The access token is invalid"
    assert revoked.status_code == 401
    assert revoked.json()["message"] == "The access token was revoked"


def test_missing_scope_is_forbidden_and_names_the_scope(sandbox: CalendlySandbox) -> None:
    # Given a token that may read scheduled events but not users
    token = sandbox.add_token(TokenSpec(scopes=frozenset({"scheduled_events:read"})))

    # When it reads /users/me
    response = Api(sandbox.base_url, token).get("/users/me")

    # Then it is Calendly's 403, naming users:read in required_scopes
    assert response.status_code == 403
    assert response.json() == {
        "title": "Permission Denied",
        "message": "This operation requires the scopes listed in the 'required_scopes' array.",
        "required_scopes": ["users:read"],
    }


def test_write_scope_implies_read(sandbox: CalendlySandbox) -> None:
    # Given a token holding only webhooks:write
    token = sandbox.add_token(TokenSpec(scopes=frozenset({"webhooks:write"})))

    # When it lists subscriptions (a webhooks:read call)
    response = Api(sandbox.base_url, token).get(
        "/webhook_subscriptions", organization=sandbox.organization_uri, scope="organization"
    )

    # Then it is allowed
    assert response.status_code == 200


def test_plain_user_cannot_list_the_whole_organization_but_can_list_own_events(
    sandbox: CalendlySandbox,
) -> None:
    # Given a member with role "user" who hosts some events
    token = sandbox.add_token(TokenSpec(role="user"))
    sandbox.seed(users=0, event_types_per_user=1, scheduled_events=5)
    client = Api(sandbox.base_url, token)
    me = client.get("/users/me").json()["resource"]["uri"]

    # When it lists the organization's events, and then its own
    org_wide = client.get("/scheduled_events", organization=sandbox.organization_uri)
    own = client.get("/scheduled_events", user=me)

    # Then the first is forbidden and the second only shows events it hosts
    assert org_wide.status_code == 403
    assert org_wide.json()["title"] == "Permission Denied"
    assert own.status_code == 200
    assert own.json()["collection"]
    assert all(event["event_memberships"] == [{"user": me}] for event in own.json()["collection"])


def test_user_cannot_read_another_hosts_event(sandbox: CalendlySandbox, api: Api) -> None:
    # Given an event hosted by someone else and a plain member's token
    invitee = sandbox.book()
    event_path = "/" + invitee.split("/", 3)[3].split("/invitees/")[0]
    outsider = sandbox.add_token(TokenSpec(role="user"))

    # When the member and an owner read the event
    denied = Api(sandbox.base_url, outsider).get(event_path)
    allowed = api.get(event_path)

    # Then only the owner may
    assert denied.status_code == 403
    assert denied.json()["message"] == "You are not allowed to view this event"
    assert allowed.status_code == 200


def test_organization_webhook_needs_owner_or_admin(sandbox: CalendlySandbox) -> None:
    # Given a member with role "user"
    client = Api(sandbox.base_url, sandbox.add_token(TokenSpec(role="user")))

    # When it subscribes at organization scope
    response = client.subscribe("http://127.0.0.1:9/hook", sandbox.organization_uri)

    # Then it is forbidden
    assert response.status_code == 403
    assert response.json()["title"] == "Permission Denied"


def test_subscribing_without_scheduled_events_read_is_a_400(sandbox: CalendlySandbox) -> None:
    # Given an owner token with webhook scopes but without scheduled_events:read
    token = sandbox.add_token(TokenSpec(scopes=frozenset({"webhooks:write", "users:read"})))

    # When it subscribes
    response = Api(sandbox.base_url, token).subscribe("http://127.0.0.1:9/hook", sandbox.organization_uri)

    # Then Calendly's answer is 400, not 403
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Argument"
    assert response.json()["required_scopes"] == ["scheduled_events:read"]


@pytest.mark.parametrize(
    ("event", "scope"),
    [
        ("invitee.created", "scheduled_events:read"),
        ("invitee_no_show.deleted", "scheduled_events:read"),
        ("event_type.updated", "event_types:read"),
        ("routing_form_submission.created", "routing_forms:read"),
    ],
)
def test_each_event_needs_its_own_scope_and_is_refused_with_400(
    sandbox: CalendlySandbox, event: str, scope: str
) -> None:
    # Given an owner token with every scope but the one this event needs
    token = sandbox.add_token(TokenSpec(scopes=frozenset(ALL_SCOPES) - {scope}))
    client = Api(sandbox.base_url, token)

    # When it subscribes to that event, and to an event whose scope it holds
    refused = client.subscribe("http://127.0.0.1:9/a", sandbox.organization_uri, events=[event])
    other = "event_type.created" if scope != "event_types:read" else "invitee.created"
    allowed = client.subscribe("http://127.0.0.1:9/b", sandbox.organization_uri, events=[other])

    # Then the first is 400 Invalid Argument naming the scope and the event; the second is made
    assert refused.status_code == 400
    body = refused.json()
    assert body["title"] == "Invalid Argument" and body["message"] == "The supplied parameters are invalid."
    assert body["required_scopes"] == [scope]
    assert body["details"][0]["parameter"] == "events" and event in body["details"][0]["message"]
    assert allowed.status_code == 201


def test_routing_forms_list_needs_routing_forms_read(sandbox: CalendlySandbox, api: Api) -> None:
    # Given tokens with and without routing_forms:read
    without = sandbox.add_token(TokenSpec(scopes=frozenset(ALL_SCOPES) - {"routing_forms:read"}))

    # When each lists the organization's routing forms
    granted = api.get("/routing_forms", organization=sandbox.organization_uri)
    refused = api.get("/routing_forms", token=without, organization=sandbox.organization_uri)

    # Then the first gets a (here empty) page, the second Calendly's 403 with required_scopes
    assert granted.status_code == 200 and granted.json()["collection"] == []
    assert refused.status_code == 403 and refused.json()["required_scopes"] == ["routing_forms:read"]


def test_free_plan_gets_invitee_webhooks_but_not_routing_forms(sandbox: CalendlySandbox) -> None:
    # Given an owner on the free plan
    client = Api(sandbox.base_url, sandbox.add_token(TokenSpec(plan="free")))

    # When it subscribes to invitee events, and separately to routing form submissions
    invitee_hook = client.subscribe("http://127.0.0.1:9/a", sandbox.organization_uri)
    routing_hook = client.subscribe(
        "http://127.0.0.1:9/b", sandbox.organization_uri, events=["routing_form_submission.created"]
    )

    # Then invitee events are allowed and routing forms need an upgrade
    assert invitee_hook.status_code == 201
    assert routing_hook.status_code == 403
    assert routing_hook.json() == {
        "title": "Permission Denied",
        "message": "Please upgrade your Calendly account to Standard",
    }


def test_unknown_path_is_resource_not_found(api: Api) -> None:
    # When a path Calendly does not have is requested
    response = api.get("/no_such_collection")

    # Then the body is Calendly's 404
    assert response.status_code == 404
    assert response.json()["title"] == "Resource Not Found"
