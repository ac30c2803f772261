"""The project's exceptions, and the one place that maps each of them to an HTTP status.

Adapters turn AWS and HTTP errors into these types, so callers never inspect botocore or
requests exceptions themselves.
"""

from __future__ import annotations


class CalendlySyncError(Exception):
    """Base of every error this project raises on purpose."""

    #: Short machine-readable cause, safe to log and to put in a metric dimension.
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class DeliveryRejected(CalendlySyncError):
    """A webhook delivery we refuse for good: retrying the same bytes cannot succeed."""


class SignatureRejected(DeliveryRejected):
    """Missing, malformed, wrong or stale ``Calendly-Webhook-Signature``."""

    reason = "signature"


class NotAnEnvelope(DeliveryRejected):
    """The body is not a Calendly webhook envelope (not JSON, not an object, fields missing)."""

    reason = "not_an_envelope"


class PayloadTooLarge(DeliveryRejected):
    """The body is larger than the configured limit."""

    reason = "too_large"


class StorageUnavailable(CalendlySyncError):
    """DynamoDB refused or failed a write; the caller should retry later."""

    reason = "storage_unavailable"


class StorageRefusedItem(StorageUnavailable):
    """DynamoDB refused the item itself (``ValidationException``: too large, an invalid value).

    The same write can never succeed, so the receiver answers a 4xx, a refusal of this
    delivery, instead of the 503 an outage gets (Calendly still retries any non-2xx for up
    to 24 hours, but the 5xx alarm is kept for outages and the log names the refusal).
    A kind of ``StorageUnavailable`` on purpose: the projector and the poller already stop
    on that and leave the record to their retry and dead-letter paths, which is where an
    item nobody can write belongs too.
    """

    reason = "item_refused"


class SecretUnavailable(CalendlySyncError):
    """Secrets Manager could not be read (outage, throttling, missing permission)."""

    reason = "secret_unavailable"


class CalendlyRejected(CalendlySyncError):
    """Calendly answered 4xx: retrying the same request cannot succeed (bad token, no scope, ...)."""

    reason = "calendly_rejected"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        title: str | None = None,
        detail: str = "",
        parameters: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, reason="calendly_unauthenticated" if status == 401 else "calendly_rejected")
        self.status = status
        self.title = title
        #: Calendly's own message ("The access token is expired", "Please upgrade ...").
        self.detail = detail
        #: The parameters Calendly's ``details`` name (``("page_token",)`` for a stale page token).
        self.parameters = parameters


class CalendlyUnavailable(CalendlySyncError):
    """Calendly could not be reached, timed out, or answered 429/5xx: try again later."""

    reason = "calendly_unavailable"


class CalendlyAnswerInvalid(CalendlyUnavailable):
    """Calendly answered, but with something we must not use: a redirect, an empty or non-JSON body,
    a body without the members the endpoint documents, or an impossible time.

    A kind of ``CalendlyUnavailable`` on purpose: every caller already treats that as "stop, keep
    what is stored, try again later", which is right here too (nothing from the answer is applied).
    The client retries a GET that answered this way under the same policy as a 5xx, because a
    truncated body or a proxy's error page is usually gone a moment later; it never retries a
    POST or DELETE (the first one may have taken effect) nor a redirect (Calendly does not
    redirect API calls, so a 3xx means a wrong base URL or something in the way, and following it
    would carry the token, or a signing key, to another host). Its own ``reason`` counts it
    apart from outages. The message names the method and path, never the token or query values.
    """

    reason = "calendly_answer_invalid"


class TimeBudgetExhausted(CalendlySyncError):
    """Going on would pass the Lambda's deadline: checkpoint and let the next run resume."""

    reason = "time_budget"


class ConfigurationError(CalendlySyncError):
    """The deployment is wrong: a missing setting or a secret without the expected shape."""

    reason = "configuration"


# Order matters only for readability: lookup walks each error's MRO, most specific first.
_HTTP_STATUS_BY_ERROR: dict[type[CalendlySyncError], int] = {
    SignatureRejected: 401,
    NotAnEnvelope: 400,
    PayloadTooLarge: 413,
    # Before StorageUnavailable (its base): retrying an item DynamoDB refuses cannot succeed.
    StorageRefusedItem: 422,
    # 5xx makes Calendly retry the delivery, which is what we want while storage is down.
    StorageUnavailable: 503,
    SecretUnavailable: 503,
    ConfigurationError: 500,
}


def http_status_for(error: CalendlySyncError) -> int:
    """The HTTP status that answers ``error`` (500 for anything not listed)."""
    for cls in type(error).__mro__:
        status = _HTTP_STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


class PublishUnavailable(CalendlySyncError):
    """EventBridge refused or failed a PutEvents request: the stream batch is handed again later."""

    reason = "publish_unavailable"


class FailureQueueUnavailable(CalendlySyncError):
    """SQS refused or failed a SendMessage: what was to be set aside is retried instead."""

    reason = "failure_queue_unavailable"
