"""Webhook subscription management: create, validate, conflict, list, read, delete, sample data."""

from __future__ import annotations

from local.calendly_sandbox import CalendlySandbox, TokenSpec
from tests.sandbox.helpers import Api, path_of


def test_created_subscription_is_shown_without_its_signing_key(sandbox: CalendlySandbox, api: Api) -> None:
    # When an owner subscribes the organization to invitee events
    response = api.subscribe("http://127.0.0.1:9/hook", sandbox.organization_uri, signing_key="secret-key")

    # Then it is 201 with Calendly's fields, active, and the key is not echoed anywhere
    assert response.status_code == 201
    resource = response.json()["resource"]
    assert resource["state"] == "active"
    assert resource["retry_started_at"] is None
    assert resource["callback_url"] == "http://127.0.0.1:9/hook"
    assert resource["scope"] == "organization"
    assert resource["organization"] == sandbox.organization_uri
    assert resource["creator"] == api.get("/users/me").json()["resource"]["uri"]
    assert "secret-key" not in response.text
    assert api.get(path_of(resource["uri"])).json()["resource"] == resource
    assert sandbox.subscription(resource["uri"]) == resource


def test_same_url_again_is_a_conflict(sandbox: CalendlySandbox, api: Api) -> None:
    # Given a subscription for a URL
    assert api.subscribe("http://127.0.0.1:9/hook", sandbox.organization_uri).status_code == 201

    # When the same URL is subscribed again, even with other events
    again = api.subscribe(
        "http://127.0.0.1:9/hook", sandbox.organization_uri, events=["invitee_no_show.created"]
    )

    # Then Calendly's 409 comes back
    assert again.status_code == 409
    assert again.json() == {"title": "Already Exists", "message": "Hook with this url already exists"}


def test_invalid_bodies_are_400_with_details(sandbox: CalendlySandbox, api: Api) -> None:
    # When required fields are missing, an event is unknown, or scope=user lacks the user
    missing = api.post("/webhook_subscriptions", {"scope": "organization"})
    unknown_event = api.subscribe(
        "http://127.0.0.1:9/a", sandbox.organization_uri, events=["invitee.cancelled"]
    )
    user_scope = api.subscribe("http://127.0.0.1:9/b", sandbox.organization_uri, scope="user")

    # Then each is an Invalid Argument naming the offending parameters
    assert missing.status_code == 400
    assert {detail["parameter"] for detail in missing.json()["details"]} == {"url", "events", "organization"}
    assert unknown_event.status_code == 400
    assert unknown_event.json()["details"][0]["parameter"] == "events"
    assert user_scope.status_code == 400
    assert user_scope.json()["details"][0]["parameter"] == "user"


def test_delete_is_204_then_404(sandbox: CalendlySandbox, api: Api) -> None:
    # Given a subscription
    uri = api.subscribe("http://127.0.0.1:9/hook", sandbox.organization_uri).json()["resource"]["uri"]

    # When it is deleted, then read and deleted again
    deleted = api.delete(uri)
    read_after = api.get(path_of(uri))
    deleted_again = api.delete(uri)

    # Then the first answer is 204 and the others are Calendly's 404
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert read_after.status_code == 404
    assert read_after.json()["title"] == "Resource Not Found"
    assert deleted_again.status_code == 404


def test_listing_is_paginated_and_filtered_by_scope(sandbox: CalendlySandbox, api: Api) -> None:
    # Given five organization hooks and one user hook
    org = sandbox.organization_uri
    for index in range(5):
        assert api.subscribe(f"http://127.0.0.1:9/org-{index}", org).status_code == 201
    me = api.get("/users/me").json()["resource"]["uri"]
    assert api.subscribe("http://127.0.0.1:9/mine", org, scope="user", user=me).status_code == 201

    # When the organization scope is listed two at a time, and the user scope too
    seen: list[str] = []
    response = api.get("/webhook_subscriptions", organization=org, scope="organization", count=2)
    while True:
        body = response.json()
        seen.extend(hook["callback_url"] for hook in body["collection"])
        if body["pagination"]["next_page"] is None:
            break
        response = api.get(body["pagination"]["next_page"])
    user_hooks = api.get("/webhook_subscriptions", organization=org, scope="user", user=me).json()

    # Then every organization hook is listed once, and the user hook only under its scope
    assert seen == [f"http://127.0.0.1:9/org-{index}" for index in range(5)]
    assert [hook["callback_url"] for hook in user_hooks["collection"]] == ["http://127.0.0.1:9/mine"]


def test_listing_requires_organization_and_scope(sandbox: CalendlySandbox, api: Api) -> None:
    # When the list is asked for without its required parameters, or by a plain member at org scope
    missing = api.get("/webhook_subscriptions")
    member = sandbox.add_token(TokenSpec(role="user"))
    forbidden = api.get(
        "/webhook_subscriptions", token=member, organization=sandbox.organization_uri, scope="organization"
    )

    # Then Calendly's 400 and 403 come back
    assert missing.status_code == 400
    assert {detail["parameter"] for detail in missing.json()["details"]} == {"organization", "scope"}
    assert forbidden.status_code == 403


def test_user_scope_hook_for_someone_else_needs_admin(sandbox: CalendlySandbox) -> None:
    # Given two plain members
    first = sandbox.add_token(TokenSpec(role="user"))
    second_uri = sandbox.user_uri_for(sandbox.add_token(TokenSpec(role="user")))

    # When the first subscribes for the second
    response = Api(sandbox.base_url, first).subscribe(
        "http://127.0.0.1:9/hook", sandbox.organization_uri, scope="user", user=second_uri
    )

    # Then it is forbidden
    assert response.status_code == 403


def test_sample_webhook_data_is_an_envelope(sandbox: CalendlySandbox, api: Api) -> None:
    # When sample data for invitee.canceled is requested
    response = api.get(
        "/sample_webhook_data",
        event="invitee.canceled",
        organization=sandbox.organization_uri,
        scope="organization",
    )

    # Then it looks like a delivery of that event
    body = response.json()
    assert response.status_code == 200
    assert body["event"] == "invitee.canceled"
    assert body["payload"]["status"] == "canceled"
    assert body["payload"]["cancellation"]["canceler_type"] == "invitee"
    assert "/invitees/" in body["payload"]["uri"]
