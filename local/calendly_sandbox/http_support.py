"""Shared plumbing for the API blueprints: the caller's identity, query parsing and list responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import current_app, g, request

from .clock import parse_timestamp
from .config import Role
from .errors import ErrorDetail, invalid_argument, invalid_parameter, missing_scopes
from .models import AccessToken, User
from .pagination import SortKey, paginate, pagination_body

if TYPE_CHECKING:
    from .sandbox import CalendlySandbox

T = TypeVar("T")
EXTENSION_KEY = "calendly_sandbox"


@dataclass(frozen=True)
class Caller:
    token: AccessToken
    user: User
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")


def sandbox() -> CalendlySandbox:
    return cast("CalendlySandbox", current_app.extensions[EXTENSION_KEY])


def caller() -> Caller:
    return cast(Caller, g.caller)


def require_scope(scope: str) -> Caller:
    """403 with ``required_scopes``, as Calendly answers tokens created without the scope."""
    who = caller()
    if not who.token.grants(scope):
        raise missing_scopes(scope)
    return who


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_parameter("body", "must be a JSON object")
    return body


def query_count() -> int:
    config = sandbox().config
    raw = request.args.get("count")
    if raw is None:
        return config.page_size_default
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= config.page_size_max:
        raise invalid_parameter("count", f"must be an integer between 1 and {config.page_size_max}")
    return count


def query_sort(field: str, default: str = "asc") -> bool:
    """Parse `sort=<field>:<asc|desc>` where only `field` is supported; True means descending."""
    raw = request.args.get("sort", f"{field}:{default}")
    name, _, direction = raw.partition(":")
    if name != field or direction not in ("asc", "desc"):
        raise invalid_parameter("sort", f"must be {field}:asc or {field}:desc")
    return direction == "desc"


def query_choice(name: str, choices: Sequence[str]) -> str | None:
    raw = request.args.get(name)
    if raw is not None and raw not in choices:
        raise invalid_parameter(name, f"must be one of: {', '.join(choices)}")
    return raw


def query_bool(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise invalid_parameter(name, "must be true or false")
    return raw.lower() == "true"


def query_time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise invalid_parameter(
            name, "must be an ISO-8601 time such as 2020-01-02T03:04:05.678123Z"
        ) from None


def require_one_of(*names: str) -> None:
    if not any(request.args.get(name) for name in names):
        raise invalid_argument(
            *(ErrorDetail(name, f"one of {' or '.join(names)} is required") for name in names)
        )


def list_response[T](
    rows: Sequence[T],
    sort_key: Callable[[T], SortKey],
    render: Callable[[T], dict[str, Any]],
    descending: bool = False,
) -> dict[str, Any]:
    """One page of `rows` in Calendly's collection/pagination envelope."""
    count = query_count()
    page = paginate(
        rows,
        sort_key,
        descending,
        count,
        request.args.get("page_token"),
        token_ttl_seconds=sandbox().config.page_token_ttl_seconds,
    )
    # Page links point back at this server (the base the client used), so clients can follow them.
    link_base = request.host_url.rstrip("/") + request.path
    query = dict(request.args.items())
    return {
        "collection": [render(row) for row in page.items],
        "pagination": pagination_body(page, link_base, query, count),
    }
