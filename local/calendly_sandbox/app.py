"""The Flask app: the request pipeline every API call goes through, and error rendering.

Pipeline for API paths (everything but /_sandbox/*), in the order the live service appears to apply it:
injected latency -> rate limit accounting (X-RateLimit-* on every response) -> injected 429/500
-> bearer authentication -> the endpoint. In strict mode a request the OpenAPI description does
not know is answered 400 before all of that (strict.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Protocol

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .admin import ADMIN_PREFIX, admin
from .api_reads import reads
from .api_webhooks import webhooks
from .config import SandboxConfig
from .errors import (
    ApiError,
    ErrorDetail,
    internal_error,
    invalid_argument,
    not_found,
    too_many_requests,
    unauthenticated,
)
from .faults import Faults
from .http_support import EXTENSION_KEY, Caller
from .ratelimit import RateDecision, RateLimiter
from .request_log import RequestLog, RequestRecord
from .state import SandboxState
from .strict import StrictMode

logger = logging.getLogger(__name__)

_TOKEN_STATE_MESSAGES = {
    "expired": "The access token is expired",
    "revoked": "The access token was revoked",
}


class SandboxParts(Protocol):
    """What the request pipeline uses of a CalendlySandbox.

    Named here rather than imported from sandbox.py, which imports this module: no import cycle.
    """

    @property
    def config(self) -> SandboxConfig: ...
    @property
    def strict(self) -> StrictMode | None: ...
    @property
    def state(self) -> SandboxState: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def rate_limiter(self) -> RateLimiter: ...
    @property
    def request_recorder(self) -> RequestLog: ...


def create_app(sandbox: SandboxParts) -> Flask:
    app = Flask("calendly_sandbox")
    app.extensions[EXTENSION_KEY] = sandbox
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Calendly's field order, easier to read
    app.url_map.strict_slashes = False
    app.register_blueprint(reads)
    app.register_blueprint(webhooks)
    app.register_blueprint(admin, url_prefix=ADMIN_PREFIX)

    @app.before_request
    def guard_api_request() -> None:
        if _is_admin_path():
            return
        if sandbox.strict is not None:
            found = sandbox.strict.check(
                request.method, request.path, request.args.to_dict(flat=False), request.get_data(cache=True)
            )
            if found:
                raise invalid_argument(
                    *(ErrorDetail("strict mode", violation) for violation in found),
                    message="strict mode: " + "; ".join(found),
                )
        faults = sandbox.faults
        if faults.latency_seconds > 0:
            time.sleep(faults.latency_seconds)
        token_value = _bearer_token()
        token = sandbox.state.tokens.get(token_value) if token_value else None
        limit = sandbox.config.limit_for_plan(token.plan) if token else sandbox.config.rate_limit
        decision = sandbox.rate_limiter.hit(token_value or f"anonymous:{request.remote_addr}", limit)
        g.rate_decision = decision
        if faults.take_forced_429():
            g.rate_decision = replace(decision, remaining=0)
            raise too_many_requests()
        if not decision.allowed:
            raise too_many_requests()
        if faults.take_forced_500():
            raise internal_error()
        if token is None:
            raise unauthenticated()
        if token.state != "valid":
            raise unauthenticated(_TOKEN_STATE_MESSAGES[token.state])
        with sandbox.state.lock:
            user = sandbox.state.users[token.user_uuid]
            g.caller = Caller(token, user, sandbox.state.role_of(user.uuid))

    @app.after_request
    def account_api_response(response: Response) -> Response:
        if _is_admin_path():
            return response
        decision: RateDecision | None = g.get("rate_decision")
        if decision is not None:
            response.headers.update(decision.headers())
        rule = request.url_rule.rule if request.url_rule is not None else "<unknown>"
        sandbox.request_recorder.add(
            RequestRecord(request.method, request.path, response.status_code, time.time()),
            endpoint=f"{request.method} {rule}",
        )
        return response

    @app.errorhandler(ApiError)
    def render_api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.to_json()), error.status

    @app.errorhandler(HTTPException)
    def render_http_exception(error: HTTPException) -> tuple[Response, int]:
        # Routing misses (404/405) look like Calendly's "Resource Not Found"; malformed bodies are 400s.
        if error.code in (404, 405):
            api_error = not_found()
        elif error.code == 400:
            api_error = invalid_argument(message=error.description or "The supplied parameters are invalid.")
        else:
            api_error = ApiError(error.code or 500, error.name, error.description or error.name)
        return jsonify(api_error.to_json()), api_error.status

    @app.errorhandler(Exception)
    def render_unexpected(error: Exception) -> tuple[Response, int]:
        logger.exception("calendly sandbox: unhandled error", exc_info=error)
        api_error = internal_error()
        return jsonify(api_error.to_json()), api_error.status

    return app


def _is_admin_path() -> bool:
    return request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/")


def _bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
