"""Calendly API v2 over HTTPS: bearer auth, timeouts, every page of every list.

One ``requests.Session`` per process; Calendly's error bodies become ``CalendlyRejected``
(4xx) or ``CalendlyUnavailable`` (429, 5xx, network). Pacing by ``X-RateLimit-*`` and retries
belong to the poller (issue 5) and build on this client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import requests

from calendly_sync.errors import CalendlyRejected, CalendlyUnavailable

# Calendly's own delivery timeouts are 10 s connect, 15 s read; our reads are smaller calls.
TIMEOUT_SECONDS = (5.0, 15.0)
MAX_PAGE_SIZE = 100


@cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    session.headers["User-Agent"] = "calendly-sync"
    return session


class CalendlyClient:
    def __init__(self, base_url: str, token: str, session: requests.Session | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._session = session or _session()

    def __repr__(self) -> str:  # never show the token
        return f"CalendlyClient({self._base_url!r})"

    def current_user(self) -> dict[str, Any]:
        """``GET /users/me``: the token's owner, with ``current_organization``."""
        resource: dict[str, Any] = self.get("/users/me")["resource"]
        return resource

    def scheduled_events(self, organization: str, **filters: str) -> Iterator[dict[str, Any]]:
        """Every scheduled event of the organization matching ``filters`` (all pages)."""
        yield from self.collection("/scheduled_events", {"organization": organization, **filters})

    def invitees(self, event_uri: str) -> Iterator[dict[str, Any]]:
        yield from self.collection(
            f"/scheduled_events/{event_uri.rstrip('/').rsplit('/', 1)[-1]}/invitees", {}
        )

    def collection(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Follow ``next_page_token`` until it is null, keeping the other query parameters."""
        query = {**params, "count": str(MAX_PAGE_SIZE)}
        while True:
            page = self.get(path, query)
            yield from page.get("collection", [])
            token = (page.get("pagination") or {}).get("next_page_token")
            if not token:
                return
            query = {**query, "page_token": token}

    def webhook_subscriptions(
        self, organization: str, scope: str, user: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {"organization": organization, "scope": scope, **({"user": user} if user else {})}
        yield from self.collection("/webhook_subscriptions", params)

    def create_webhook_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        resource: dict[str, Any] = self.request("POST", "/webhook_subscriptions", body=body)["resource"]
        return resource

    def delete_webhook_subscription(self, uri: str) -> None:
        self.request("DELETE", f"/webhook_subscriptions/{uri.rstrip('/').rsplit('/', 1)[-1]}")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call; 2xx answers their JSON body (``{}`` for 204), anything else raises."""
        try:
            response = self._session.request(
                method,
                f"{self._base_url}{path}",
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            raise CalendlyUnavailable(f"Calendly unreachable ({type(error).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise CalendlyUnavailable(f"Calendly answered {response.status_code} to {method} {path}")
        if response.status_code >= 400:
            title, message = _error_body(response)
            raise CalendlyRejected(
                f"Calendly answered {response.status_code} {title}: {message}",
                status=response.status_code,
                title=title,
                detail=message,
            )
        if response.status_code == 204 or not response.content:
            return {}
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            raise CalendlyUnavailable(
                f"Calendly answered {method} {path} with a body that is not JSON"
            ) from None
        return answer


def _error_body(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "Error", ""
    return str(body.get("title", response.reason)), str(body.get("message", ""))
