"""Hostile and odd input through the real entry point: documented 4xx, never a crash or 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.lambda_runtime import http_api_event, rest_api_event, signed_delivery_event
from tests.conftest import SIGNING_KEY, LocalAws, sample_event

#: Valid ISO-8601 times at the edge of the calendar, which Python cannot hold in UTC or at all.
EDGE_TIMES = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "10000-01-01T00:00:00Z"]

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
event_names = st.sampled_from(
    [
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
        "event_type.updated",
        "routing_form_submission.created",
        "made.up",
    ]
) | st.text(max_size=30)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "event": event_names | json_values,
        "created_at": st.sampled_from(
            ["2026-11-02T09:00:00.000000Z", "2026-11-02T09:00:00+01:00", "never", *EDGE_TIMES]
        )
        | json_values,
        "created_by": json_values,
        "payload": st.dictionaries(
            st.sampled_from(
                [
                    "uri",
                    "updated_at",
                    "created_at",
                    "email",
                    "status",
                    "scheduled_event",
                    "old_invitee",
                    "new_invitee",
                    "no_show",
                    "cancellation",
                    "event",
                ]
            )
            | st.text(max_size=8),
            json_values
            | st.sampled_from(
                [
                    "https://api.calendly.com/scheduled_events/E1/invitees/I1",
                    "https://api.calendly.com/scheduled_events/E1",
                    "https://api.calendly.com/event_types/T1",
                    "2026-11-02T09:00:00.000000Z",
                    *EDGE_TIMES,
                ]
            ),
            max_size=8,
        )
        | json_values,
    },
)


def status_of(handler: Any, context: Any, event: dict[str, Any]) -> int:
    status: int = handler(event, context)["statusCode"]
    return status


@FUZZ
@given(envelope=envelopes)
def test_any_signed_json_gets_200_or_400_never_5xx(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, envelope: dict[str, Any]
) -> None:
    # Given a correctly signed body of any JSON shape (Calendly's keys, odd values)
    event = signed_delivery_event(json.dumps(envelope), SIGNING_KEY)

    # Then it is stored or refused as not an envelope, never a server error,
    # and what is stored the stream projector applies or skips, never fails on
    assert status_of(receive_webhook, lambda_context, event) in (200, 400)
    aws.project()


@FUZZ
@given(body=st.binary(max_size=2048), base64_encoded=st.booleans())
def test_any_signed_bytes_get_a_documented_answer(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, body: bytes, base64_encoded: bool
) -> None:
    if not base64_encoded:
        body = body.decode("utf-8", "replace").encode("utf-8")
    event = signed_delivery_event(body, SIGNING_KEY, base64_encoded=base64_encoded)
    assert status_of(receive_webhook, lambda_context, event) in (200, 400)


@FUZZ
@given(
    header_name=st.sampled_from(
        ["calendly-webhook-signature", "Calendly-Webhook-Signature", "CALENDLY-WEBHOOK-SIGNATURE"]
    ),
    extra_headers=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=2000), max_size=5),
)
def test_header_case_and_noise_do_not_change_the_verdict(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, header_name: str, extra_headers: dict[str, str]
) -> None:
    # Given a genuine delivery whose signature header has any case, among noisy headers
    event = signed_delivery_event(json.loads(sample_event("invitee_created")["body"]), SIGNING_KEY)
    signature = event["headers"].pop("calendly-webhook-signature")
    noise = {k: v for k, v in extra_headers.items() if k.lower() != "calendly-webhook-signature"}
    event["headers"] = {**noise, header_name: signature}

    # Then it is accepted (stored or, on repeats, a duplicate)
    assert status_of(receive_webhook, lambda_context, event) == 200


def test_deeply_nested_json_is_refused_or_stored_never_a_crash(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    for depth in (50, 5_000, 100_000):
        nested = "[" * depth + "]" * depth
        body = '{"event":"x.y","created_at":"2026-11-02T09:00:00Z","payload":{"deep":' + nested + "}}"
        status = status_of(receive_webhook, lambda_context, signed_delivery_event(body, SIGNING_KEY))
        assert status in (200, 400, 413), depth


def test_a_huge_signature_header_is_a_401_not_a_crash(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    event = signed_delivery_event(json.loads(sample_event("invitee_created")["body"]), SIGNING_KEY)
    event["headers"]["calendly-webhook-signature"] = "t=1," + "v1=" * 100_000
    assert status_of(receive_webhook, lambda_context, event) == 401


def test_a_lone_surrogate_escape_is_refused_or_stored_never_a_crash(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    body = '{"event":"invitee.created","created_at":"2026-11-02T09:00:00Z","payload":{"name":"\\ud800"}}'
    assert status_of(receive_webhook, lambda_context, signed_delivery_event(body, SIGNING_KEY)) in (200, 400)


@FUZZ
@given(
    payload_v1=st.booleans(),
    base64_encoded=st.booleans(),
    header_case=st.sampled_from(["lower", "title", "upper"]),
    drop=st.sampled_from([None, "signature", "content-type", "all"]),
)
def test_api_gateway_event_variants_get_the_same_verdict(
    aws: LocalAws,
    receive_webhook: Any,
    lambda_context: Any,
    payload_v1: bool,
    base64_encoded: bool,
    header_case: str,
    drop: str | None,
) -> None:
    # Given one genuine delivery, as payload format 1.0 or 2.0, base64 or not, any header case
    body = json.dumps(json.loads(sample_event("invitee_created")["body"])).encode()
    headers = signed_delivery_event(body, SIGNING_KEY)["headers"]
    if drop == "all":
        headers = {}
    elif drop == "signature":
        headers.pop("calendly-webhook-signature")
    elif drop == "content-type":
        headers.pop("content-type")
    cased = {
        "lower": str.lower,
        "title": lambda name: "-".join(part.capitalize() for part in name.split("-")),
        "upper": str.upper,
    }[header_case]
    headers = {cased(name): value for name, value in headers.items()}
    if payload_v1:
        event = rest_api_event("POST", "/webhooks/calendly", body, headers, base64_encoded=base64_encoded)
    else:
        event = http_api_event("POST", "/webhooks/calendly", body, headers, base64_encoded=base64_encoded)

    # Then the answer depends only on the signature: stored (or a duplicate) with it, 401 without
    status = status_of(receive_webhook, lambda_context, event)
    assert status == (401 if drop in ("signature", "all") else 200)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", None, 200),  # Calendly's JSON under another label: the signed bytes are what count
        ("application/x-www-form-urlencoded", b"event=invitee.created&payload=x", 400),
        ("application/xml", b"<envelope><event>invitee.created</event></envelope>", 400),
        ("application/octet-stream", b"\x00\x01\x02", 400),
    ],
)
def test_content_type_does_not_decide_the_body_does(
    aws: LocalAws,
    receive_webhook: Any,
    lambda_context: Any,
    content_type: str,
    body: bytes | None,
    status: int,
) -> None:
    raw = body if body is not None else sample_event("invitee_created")["body"].encode()
    event = signed_delivery_event(raw, SIGNING_KEY, base64_encoded=True)
    event["headers"]["content-type"] = content_type
    assert status_of(receive_webhook, lambda_context, event) == status
