"""Page tokens that go stale, as Calendly's do (``SandboxConfig.page_token_ttl_seconds``)."""

from __future__ import annotations

import pytest

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.calendly_sandbox.errors import ApiError
from local.calendly_sandbox.pagination import paginate
from tests.sandbox.conftest import SEED_START
from tests.sandbox.helpers import Api

ROWS = [f"row-{n:03d}" for n in range(25)]


def by_name(row: str) -> tuple[str, ...]:
    return (row,)


def test_a_token_is_honoured_within_its_lifetime_and_refused_after_it() -> None:
    # Given a first page served at t=1000 s with tokens that live 1 s
    first = paginate(ROWS, by_name, False, 10, None, token_ttl_seconds=1.0, now=1000.0)
    assert first.next_token is not None

    # When the token comes back within its life, then after it
    second = paginate(ROWS, by_name, False, 10, first.next_token, token_ttl_seconds=1.0, now=1000.9)
    with pytest.raises(ApiError) as refused:
        paginate(ROWS, by_name, False, 10, first.next_token, token_ttl_seconds=1.0, now=1001.5)

    # Then the first use reads on, and the late one is Calendly's 400 for a stale token
    assert second.items == ROWS[10:20]
    body = refused.value.to_json()
    assert refused.value.status == 400 and body["title"] == "Invalid Argument"
    assert body["details"] == [{"parameter": "page_token", "message": "is invalid"}]


def test_without_a_lifetime_tokens_never_expire_and_stay_the_same() -> None:
    first = paginate(ROWS, by_name, False, 10, None)
    later = paginate(ROWS, by_name, False, 10, first.next_token, now=10**9)
    assert later.items == ROWS[10:20]
    assert paginate(ROWS, by_name, False, 10, None).next_token == first.next_token


def test_a_token_minted_without_a_time_is_stale_once_tokens_expire() -> None:
    # Given a token from a sandbox whose tokens never expired, and then a lifetime set
    timeless = paginate(ROWS, by_name, False, 10, None).next_token
    with pytest.raises(ApiError) as refused:
        paginate(ROWS, by_name, False, 10, timeless, token_ttl_seconds=60.0, now=0.0)
    assert refused.value.status == 400


def test_the_http_api_answers_a_stale_token_with_calendlys_400() -> None:
    # Given a sandbox whose page tokens are stale by the time they come back
    config = SandboxConfig(seed=7, page_token_ttl_seconds=0.000_001)
    with CalendlySandbox(config) as sandbox:
        sandbox.seed(scheduled_events=30, start=SEED_START)
        api = Api(sandbox.base_url, sandbox.add_token(TokenSpec(role="owner")))
        first = api.get("/scheduled_events", organization=sandbox.organization_uri, count=10)

        # When the next page is asked for with its token
        late = api.get(first.json()["pagination"]["next_page"])

    # Then it is refused as Calendly refuses an old token
    assert first.status_code == 200
    assert late.status_code == 400
    assert late.json()["title"] == "Invalid Argument"
    assert late.json()["details"] == [{"parameter": "page_token", "message": "is invalid"}]


def test_a_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page_token_ttl_seconds"):
        SandboxConfig(page_token_ttl_seconds=0)
