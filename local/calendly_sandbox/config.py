"""Configuration objects for the Calendly sandbox.

Everything that a test may want to scale (rate limits, retry timing, page sizes) lives here so the
sandbox can reproduce Calendly's 24-hour retry behaviour in a couple of seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["owner", "admin", "user"]
Plan = Literal["paid", "free"]
TokenState = Literal["valid", "expired", "revoked"]

# The personal-access-token scopes the project uses. A token created with scopes=None gets all of them.
ALL_SCOPES: frozenset[str] = frozenset(
    {
        "users:read",
        "organizations:read",
        "event_types:read",
        "routing_forms:read",
        "scheduled_events:read",
        "webhooks:read",
        "webhooks:write",
    }
)


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves. Defaults mirror the live Calendly API v2 where it is documented."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    # URIs inside response bodies look like Calendly's; the server itself only listens on `host`.
    public_base: str = "https://api.calendly.com"
    scheduling_base: str = "https://calendly.com"

    # X-RateLimit-* accounting, per token and fixed window.
    rate_limit: int = 500
    rate_window_seconds: float = 60.0
    free_plan_rate_limit: int | None = None  # None: free-plan tokens share `rate_limit` (live API: 50)

    page_size_default: int = 20
    page_size_max: int = 100
    # Calendly's page tokens go stale (400 "page_token: is invalid"); None: they never do here.
    page_token_ttl_seconds: float | None = None

    seed: int = 1234  # drives ids, seeded data and probabilistic faults

    # Webhook delivery. Calendly retries with exponential back-off for 24 h and then disables the hook.
    delivery_retry_window_seconds: float = 24 * 3600.0
    delivery_initial_backoff_seconds: float = 60.0
    delivery_backoff_factor: float = 2.0
    delivery_max_backoff_seconds: float = 3600.0
    delivery_connect_timeout_seconds: float = 10.0
    delivery_timeout_seconds: float = 15.0  # read timeout
    delivery_concurrency: int = 4  # parallel senders, so one slow endpoint does not hold back others
    # With the reorder fault on, each delivery is held back by a random delay up to this long.
    reorder_hold_seconds: float = 0.25

    organization_name: str = "Sandbox Organization"

    def __post_init__(self) -> None:
        if self.rate_limit < 1 or self.rate_window_seconds <= 0:
            raise ValueError("rate_limit must be >= 1 and rate_window_seconds > 0")
        if not 1 <= self.page_size_default <= self.page_size_max:
            raise ValueError("page_size_default must be within 1..page_size_max")
        if self.delivery_initial_backoff_seconds <= 0 or self.delivery_backoff_factor < 1:
            raise ValueError("delivery back-off must be positive and non-shrinking")
        if self.page_token_ttl_seconds is not None and self.page_token_ttl_seconds <= 0:
            raise ValueError("page_token_ttl_seconds must be > 0 (or None: tokens never expire)")
        if self.delivery_concurrency < 1:
            raise ValueError("delivery_concurrency must be >= 1")

    def limit_for_plan(self, plan: Plan) -> int:
        if plan == "free" and self.free_plan_rate_limit is not None:
            return self.free_plan_rate_limit
        return self.rate_limit


@dataclass(frozen=True)
class TokenSpec:
    """A personal access token to mint.

    `user` binds the token to an existing user URI (or uuid) of the organization; without it a new
    user is created with `role` (default owner). For an existing user `role` must be None or match
    the user's membership role, so a test never silently gets a different role than it asked for.
    `plan` stands in for the organization's plan as seen through this token.
    """

    role: Role | None = None
    plan: Plan = "paid"
    scopes: frozenset[str] | None = None  # None: all scopes
    state: TokenState = "valid"
    user: str | None = None
    name: str | None = None
    email: str | None = None

    def effective_scopes(self) -> frozenset[str]:
        return ALL_SCOPES if self.scopes is None else frozenset(self.scopes)
