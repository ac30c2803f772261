"""Calendly-style pagination: {"collection": [...], "pagination": {...}} with opaque page tokens.

Tokens are keyset cursors ("the page after the row with this sort key"), not offsets, so a page
token keeps meaning the same thing when rows are added elsewhere in the list, and the same query
always yields the same tokens.

Calendly's tokens also go stale: an old one is answered 400 Invalid Argument with
``details: [{"parameter": "page_token", "message": "is invalid"}]``. With a token lifetime set
(``SandboxConfig.page_token_ttl_seconds``), each token carries when it was issued and is refused
that way once older than the lifetime; without one, tokens never expire (and stay identical).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from .errors import invalid_parameter

T = TypeVar("T")
SortKey = tuple[str, ...]
Direction = Literal["after", "before"]


@dataclass(frozen=True)
class Cursor:
    direction: Direction
    key: SortKey
    issued_at: float | None = None  # epoch seconds; only set when tokens expire

    def encode(self) -> str:
        body: dict[str, Any] = {"d": self.direction, "k": list(self.key)}
        if self.issued_at is not None:
            body["t"] = round(self.issued_at, 3)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            direction = data["d"]
            key = tuple(str(part) for part in data["k"])
            issued_at = float(data["t"]) if "t" in data else None
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise invalid_parameter("page_token", "is invalid") from None
        if direction not in ("after", "before"):
            raise invalid_parameter("page_token", "is invalid")
        return cls(direction, key, issued_at)


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next_token: str | None
    previous_token: str | None


def paginate[T](
    rows: Sequence[T],
    sort_key: Callable[[T], SortKey],
    descending: bool,
    count: int,
    page_token: str | None,
    *,
    token_ttl_seconds: float | None = None,
    now: float | None = None,
) -> Page[T]:
    """Slice `rows` (any order) into the page that `page_token` names, ordered by `sort_key`.

    With `token_ttl_seconds`, a token older than that (or issued without a time) is refused.
    """
    issued_at = (time.time() if now is None else now) if token_ttl_seconds is not None else None
    ordered = sorted(rows, key=sort_key, reverse=descending)
    keys = [sort_key(row) for row in ordered]

    def comes_before(left: SortKey, right: SortKey) -> bool:
        return left > right if descending else left < right

    if page_token is None:
        start = 0
    else:
        cursor = Cursor.decode(page_token)
        if issued_at is not None and (
            cursor.issued_at is None or issued_at - cursor.issued_at > (token_ttl_seconds or 0.0)
        ):
            raise invalid_parameter("page_token", "is invalid")  # stale, as Calendly's go
        if cursor.direction == "after":
            start = next((i for i, key in enumerate(keys) if comes_before(cursor.key, key)), len(keys))
        else:
            end = next((i for i, key in enumerate(keys) if not comes_before(key, cursor.key)), len(keys))
            start = max(0, end - count)
    page = ordered[start : start + count]
    end_index = start + len(page)
    next_token = (
        Cursor("after", keys[end_index - 1], issued_at).encode()
        if page and end_index < len(ordered)
        else None
    )
    previous_token = Cursor("before", keys[start], issued_at).encode() if page and start > 0 else None
    return Page(page, next_token, previous_token)


def pagination_body(
    page: Page[Any], request_url_base: str, query: Mapping[str, str], count: int
) -> dict[str, Any]:
    """The "pagination" object; page links keep every other query parameter of the request."""

    def link(token: str | None) -> str | None:
        if token is None:
            return None
        params = {name: value for name, value in query.items() if name != "page_token"}
        params.setdefault("count", str(count))
        params["page_token"] = token
        return f"{request_url_base}?{urlencode(params)}"

    return {
        "count": len(page.items),
        "next_page": link(page.next_token),
        "previous_page": link(page.previous_token),
        "next_page_token": page.next_token,
        "previous_page_token": page.previous_token,
    }
