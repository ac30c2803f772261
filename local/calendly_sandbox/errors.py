"""API errors with Calendly's body shape: {"title", "message", "details"?}."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ErrorDetail:
    parameter: str
    message: str
    code: str | None = None

    def to_json(self) -> dict[str, str]:
        body = {"parameter": self.parameter, "message": self.message}
        if self.code is not None:
            body["code"] = self.code
        return body


@dataclass(eq=False)  # exceptions must stay hashable
class ApiError(Exception):
    status: int
    title: str
    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    #: Scope refusals name what the token lacks (403 on an endpoint, 400 on a webhook event).
    required_scopes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.title}: {self.message}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title, "message": self.message}
        if self.details:
            body["details"] = [detail.to_json() for detail in self.details]
        if self.required_scopes:
            body["required_scopes"] = list(self.required_scopes)
        return body


INVALID_PARAMETERS = "The supplied parameters are invalid."
NO_PERMISSION = "You do not have permission to access this resource."
MISSING_SCOPES = "This operation requires the scopes listed in the 'required_scopes' array."


def invalid_argument(*details: ErrorDetail, message: str = INVALID_PARAMETERS) -> ApiError:
    return ApiError(400, "Invalid Argument", message, list(details))


def invalid_parameter(parameter: str, message: str) -> ApiError:
    return invalid_argument(ErrorDetail(parameter, message))


def missing_scopes(*scopes: str) -> ApiError:
    """An endpoint called with a token created without its scope (Calendly's own words)."""
    return ApiError(403, "Permission Denied", MISSING_SCOPES, required_scopes=list(scopes))


def missing_event_scopes(events: list[str], scopes: list[str]) -> ApiError:
    """A webhook subscription to events whose scope the token lacks: 400, not 403."""
    detail = ErrorDetail("events", f"{', '.join(events)} require the scopes listed in 'required_scopes'")
    return ApiError(400, "Invalid Argument", INVALID_PARAMETERS, [detail], required_scopes=scopes)


def unauthenticated(message: str = "The access token is invalid") -> ApiError:
    return ApiError(401, "Unauthenticated", message)


def permission_denied(message: str = NO_PERMISSION) -> ApiError:
    return ApiError(403, "Permission Denied", message)


def not_found(message: str = "The server could not find the requested resource.") -> ApiError:
    return ApiError(404, "Resource Not Found", message)


def already_exists(message: str) -> ApiError:
    return ApiError(409, "Already Exists", message)


def too_many_requests() -> ApiError:
    return ApiError(429, "Too Many Requests", "You have exceeded the rate limit. Please try again later.")


def internal_error() -> ApiError:
    return ApiError(
        500,
        "Internal Server Error",
        "The server encountered an unexpected condition that prevented it from fulfilling the request.",
    )
