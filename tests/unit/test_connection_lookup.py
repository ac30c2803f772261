"""Whom the stored token acts for: the stored CONNECTION item first, Calendly only without one."""

from __future__ import annotations

from typing import Any

from calendly_sync.credentials import Connection, load_connection

USER = "https://api.calendly.com/users/U1"
ORGANIZATION = "https://api.calendly.com/organizations/O1"


class FakeTable:
    def __init__(self, connection: dict[str, Any] | None) -> None:
        self.items = {} if connection is None else {"CONNECTION": connection}

    def sync_state(self, name: str) -> dict[str, Any] | None:
        return self.items.get(name)


class FakeCalendly:
    """Answers /users/me and the membership lookup; counts what it was asked."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.calls: list[str] = []

    def current_user(self) -> dict[str, Any]:
        self.calls.append("/users/me")
        return {"uri": USER, "current_organization": ORGANIZATION}

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        self.calls.append(path)
        return {"collection": [{"role": self.role}], "pagination": {"next_page_token": None}}


def test_a_checked_connection_is_read_from_the_table_without_asking_calendly() -> None:
    # GIVEN a CONNECTION item written when a member's token was checked
    stored = {"user": USER, "organization": ORGANIZATION, "scope": "user", "checked_at": "t"}
    calendly = FakeCalendly(role="owner")

    # WHEN the connection is looked up
    connection = load_connection(FakeTable(stored), calendly)  # type: ignore[arg-type]

    # THEN it is the stored one, item included, and Calendly was not asked
    assert connection == Connection(USER, ORGANIZATION, "user", stored)
    assert calendly.calls == []


def test_a_stored_connection_without_a_scope_means_organization_scope() -> None:
    # GIVEN a CONNECTION item from before scopes were recorded
    stored = {"user": USER, "organization": ORGANIZATION}

    # WHEN the connection is looked up
    connection = load_connection(FakeTable(stored), FakeCalendly(role="user"))  # type: ignore[arg-type]

    # THEN organization scope is assumed
    assert connection.scope == "organization"


def test_a_token_put_in_place_by_hand_is_identified_by_calendly() -> None:
    # GIVEN no CONNECTION item (a token written to the secret by hand), owned by a plain member
    calendly = FakeCalendly(role="user")

    # WHEN the connection is looked up
    connection = load_connection(FakeTable(None), calendly)  # type: ignore[arg-type]

    # THEN Calendly names the user and organization, and a member gets user scope
    assert (connection.user, connection.organization, connection.scope) == (USER, ORGANIZATION, "user")
    assert connection.record == {}
    assert calendly.calls == ["/users/me", "/organization_memberships"]


def test_an_incomplete_item_is_not_trusted() -> None:
    # GIVEN a CONNECTION item that lost its user (a failed re-check of a hand-placed token)
    calendly = FakeCalendly(role="admin")

    # WHEN the connection is looked up
    connection = load_connection(FakeTable({"organization": ORGANIZATION, "healthy": False}), calendly)  # type: ignore[arg-type]

    # THEN Calendly is asked, and an admin gets organization scope
    assert connection.scope == "organization"
    assert calendly.calls[0] == "/users/me"
