"""Reading data: resources, filters, count bounds and Calendly-style pagination."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.calendly_sandbox.pagination import paginate
from tests.sandbox.conftest import SEED_START
from tests.sandbox.helpers import Api, path_of


def walk(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_page links to the end, checking that every link keeps the original parameters."""
    pages = []
    response = api.get(path, **params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        next_page = body["pagination"]["next_page"]
        if body["pagination"]["next_page_token"] is None:
            assert next_page is None
            return pages
        query = parse_qs(urlsplit(next_page).query)
        for name, value in params.items():
            assert query[name] == [str(value)], f"next_page dropped {name}"
        assert query["page_token"] == [body["pagination"]["next_page_token"]]
        response = api.get(next_page)


def test_users_me_describes_the_token_owner(sandbox: CalendlySandbox, api: Api) -> None:
    # When the owner asks who it is, then fetches itself by URI path
    me = api.get("/users/me").json()["resource"]
    again = api.get(path_of(me["uri"])).json()["resource"]

    # Then the user carries Calendly's fields and the organization URI that org-scoped calls need
    assert me["current_organization"] == sandbox.organization_uri
    assert me["uri"].startswith("https://api.calendly.com/users/")
    assert {"name", "slug", "email", "scheduling_url", "timezone", "avatar_url", "created_at"} <= set(me)
    assert again == me


def test_memberships_show_roles(sandbox: CalendlySandbox, api: Api) -> None:
    # Given an admin next to the owner
    admin_token = sandbox.add_token(TokenSpec(role="admin"))
    admin_uri = sandbox.user_uri_for(admin_token)

    # When the memberships of that user are listed
    response = api.get("/organization_memberships", organization=sandbox.organization_uri, user=admin_uri)

    # Then exactly that membership comes back, with its role
    [membership] = response.json()["collection"]
    assert membership["role"] == "admin"
    assert membership["user"]["uri"] == admin_uri
    assert membership["organization"] == sandbox.organization_uri


def test_event_types_sort_by_name(sandbox: CalendlySandbox, api: Api) -> None:
    # Given seeded event types
    sandbox.seed(users=2, event_types_per_user=3, scheduled_events=0, start=SEED_START)

    # When they are listed by name, descending
    pages = walk(api, "/event_types", organization=sandbox.organization_uri, sort="name:desc", count=2)

    # Then all arrive in that order
    names = [event_type["name"] for page in pages for event_type in page["collection"]]
    assert len(names) == 9  # 3 for each seeded user and 3 for the owner, who had none
    assert names == sorted(names, reverse=True)


@pytest.mark.parametrize("sort", ["start_time:asc", "start_time:desc"])
def test_pagination_walks_every_event_once_in_order(sandbox: CalendlySandbox, api: Api, sort: str) -> None:
    # Given 57 seeded events
    sandbox.seed(users=3, event_types_per_user=2, scheduled_events=57, start=SEED_START, days=10)

    # When every page of 10 is followed
    pages = walk(api, "/scheduled_events", organization=sandbox.organization_uri, count=10, sort=sort)

    # Then each event appears exactly once, in start-time order, and only the first page has no previous
    events = [event for page in pages for event in page["collection"]]
    assert len(pages) == 6
    assert len({event["uri"] for event in events}) == 57
    starts = [event["start_time"] for event in events]
    assert starts == sorted(starts, reverse=sort.endswith("desc"))
    assert pages[0]["pagination"]["previous_page_token"] is None
    assert all(page["pagination"]["previous_page_token"] for page in pages[1:])


def test_previous_page_returns_the_page_before(sandbox: CalendlySandbox, api: Api) -> None:
    # Given the second page of a listing
    sandbox.seed(scheduled_events=30, start=SEED_START)
    first = api.get("/scheduled_events", organization=sandbox.organization_uri, count=7).json()
    second = api.get(first["pagination"]["next_page"]).json()

    # When its previous_page link is followed
    back = api.get(second["pagination"]["previous_page"]).json()

    # Then it is the first page again, and the same query yields the same (stable) tokens
    assert back["collection"] == first["collection"]
    repeat = api.get("/scheduled_events", organization=sandbox.organization_uri, count=7).json()
    assert repeat["pagination"]["next_page_token"] == first["pagination"]["next_page_token"]


def test_filters_narrow_the_listing(sandbox: CalendlySandbox, api: Api) -> None:
    # Given seeded events (about 10% canceled) and one booking for a known email
    sandbox.seed(scheduled_events=80, start=SEED_START, days=20)
    sandbox.book(start_time=SEED_START + timedelta(days=3, hours=1), email="known.person@example.com")
    window = {"min_start_time": "2030-03-05T00:00:00Z", "max_start_time": "2030-03-10T00:00:00.000000Z"}
    org = sandbox.organization_uri

    # When filtering by status, by start window and by invitee email
    canceled = [
        e
        for p in walk(api, "/scheduled_events", organization=org, status="canceled")
        for e in p["collection"]
    ]
    in_window = [
        e for p in walk(api, "/scheduled_events", organization=org, **window) for e in p["collection"]
    ]
    by_email = api.get("/scheduled_events", organization=org, invitee_email="known.person@example.com").json()

    # Then each filter holds
    assert canceled
    assert all(event["status"] == "canceled" and "cancellation" in event for event in canceled)
    assert in_window
    assert all("2030-03-05" <= event["start_time"] < "2030-03-10" for event in in_window)
    assert [event["start_time"] for event in by_email["collection"]] == ["2030-03-04T01:00:00.000000Z"]


@pytest.mark.parametrize("count", ["0", "101", "ten"])
def test_count_out_of_bounds_is_invalid_argument(sandbox: CalendlySandbox, api: Api, count: str) -> None:
    # When a count outside 1..100 is asked for
    response = api.get("/scheduled_events", organization=sandbox.organization_uri, count=count)

    # Then it is a 400 whose details name the parameter
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid Argument"
    assert [detail["parameter"] for detail in body["details"]] == ["count"]


def test_count_limits_and_bad_tokens(sandbox: CalendlySandbox, api: Api) -> None:
    # Given 30 events
    sandbox.seed(scheduled_events=30, start=SEED_START)
    org = sandbox.organization_uri

    # When asking for the maximum page, the default page, and a forged page token
    full = api.get("/scheduled_events", organization=org, count=100).json()
    default = api.get("/scheduled_events", organization=org).json()
    forged = api.get("/scheduled_events", organization=org, page_token="%%%not-a-token")

    # Then the bounds hold and the forged token is refused
    assert len(full["collection"]) == 30
    assert full["pagination"]["next_page"] is None
    assert len(default["collection"]) == 20
    assert forged.status_code == 400
    assert forged.json()["details"][0]["parameter"] == "page_token"


def test_invitees_of_an_event(sandbox: CalendlySandbox, api: Api) -> None:
    # Given a booking
    invitee_uri = sandbox.book(email="guest@example.com")
    event_path = path_of(invitee_uri).split("/invitees/")[0]

    # When the event's invitees are listed and the invitee is fetched
    listed = api.get(f"{event_path}/invitees", status="active").json()
    single = api.get(path_of(invitee_uri)).json()["resource"]

    # Then both describe the same invitee, linked to the event
    assert [invitee["uri"] for invitee in listed["collection"]] == [invitee_uri]
    assert single["email"] == "guest@example.com"
    assert single["event"] == "https://api.calendly.com" + event_path
    assert single["no_show"] is None


def test_same_seed_gives_the_same_data() -> None:
    # Given two sandboxes with the same seed and the same calls
    def snapshot() -> list[tuple[str, str]]:
        with CalendlySandbox(SandboxConfig(seed=99)) as sandbox:
            token = sandbox.add_token(TokenSpec(role="owner"))
            sandbox.seed(users=2, scheduled_events=15, start=SEED_START)
            body = Api(sandbox.base_url, token).get(
                "/scheduled_events", organization=sandbox.organization_uri, count=100
            )
            return [(event["uri"], event["start_time"]) for event in body.json()["collection"]]

    # Then they hold identical events
    assert snapshot() == snapshot()


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(min_value=0, max_value=10_000), unique=True, max_size=60),
    count=st.integers(min_value=1, max_value=15),
    descending=st.booleans(),
)
def test_page_tokens_cover_every_row_once_both_ways(keys: list[int], count: int, descending: bool) -> None:
    # Given any rows and page size
    def sort_key(row: int) -> tuple[str, ...]:
        return (f"{row:08d}",)

    # When walking forward with next tokens, and back from the last page with previous tokens
    forward: list[list[int]] = []
    token = None
    while True:
        page = paginate(keys, sort_key, descending, count, token)
        forward.append(page.items)
        if page.next_token is None:
            break
        token = page.next_token
    backward = [page.items]
    while page.previous_token is not None:
        page = paginate(keys, sort_key, descending, count, page.previous_token)
        backward.append(page.items)

    # Then both walks see every row exactly once, in order
    assert [row for items in forward for row in items] == sorted(keys, reverse=descending)
    assert backward[::-1] == forward
