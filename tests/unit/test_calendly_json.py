"""Calendly's JSON as the stack reads it: every value writes back as JSON that EventBridge takes.

GIVEN legal JSON numbers that JSON and PutEvents cannot carry once read as Python numbers
(``1e400`` is ``inf``; an integer past int64), and the literals Python's ``json`` accepts
although they are not JSON, WHEN read by the loader (directly, as a webhook envelope, as a
Calendly API answer) THEN each is a string holding its text, and the rest reads as usual.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from calendly_sync import calendly_json
from calendly_sync.calendly_json import INT64_MAX, INT64_MIN
from calendly_sync.envelope import parse_envelope
from calendly_sync.errors import NotAnEnvelope
from tests.unit.test_calendly_client import BASE, EVENT, FakeTime, answer, client_for, listing

OUT_OF_RANGE = {
    "1e400": "1e400",
    "-1E+400": "-1E+400",
    "123.4e999": "123.4e999",
    str(INT64_MAX + 1): str(INT64_MAX + 1),
    str(INT64_MIN - 1): str(INT64_MIN - 1),
    "1" * 4_300: "1" * 4_300,  # the longest integer either parser reads at all
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
}


def strict_json(value: Any) -> Any:
    """What a strict JSON reader (EventBridge's) makes of ``value`` written back as JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(json.dumps(value, allow_nan=False), parse_constant=refuse)


@pytest.mark.parametrize("text", sorted(OUT_OF_RANGE))
def test_a_number_json_or_putevents_cannot_carry_is_kept_as_its_text(text: str) -> None:
    # WHEN a document holding it is read
    value = calendly_json.loads('{"seats": ' + text + ', "list": [' + text + "]}")

    # THEN it is the string Calendly wrote, wherever it is, and the whole writes back as strict JSON
    assert value == {"seats": OUT_OF_RANGE[text], "list": [OUT_OF_RANGE[text]]}
    assert strict_json(value) == value


def test_numbers_within_range_stay_numbers() -> None:
    text = json.dumps({"a": INT64_MAX, "b": INT64_MIN, "c": 0, "d": -1.5, "e": 1e308, "f": 2.5e-300})
    value = calendly_json.loads(text)
    assert value == {"a": INT64_MAX, "b": INT64_MIN, "c": 0, "d": -1.5, "e": 1e308, "f": 2.5e-300}
    assert type(value["a"]) is int and type(value["d"]) is float


def test_bytes_read_like_text_and_strings_are_untouched() -> None:
    text = '{"name": "Zoë 1e400", "note": "NaN", "emoji": "\\ud83d\\ude00"}'
    expected = {"name": "Zoë 1e400", "note": "NaN", "emoji": "😀"}
    assert calendly_json.loads(text) == expected
    assert calendly_json.loads(text.encode()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "{'a': 1}",
        '{"a": 1} trailing',
        '"\\ud800"',  # a lone surrogate: no UTF-8 carries it to DynamoDB or the bus
        '{"a": "\\udc00 alone"}',
        "[" * 5_000 + "]" * 5_000,
        "[" * 100_000 + "]" * 100_000,
        "1" * 4_301,  # an integer longer than any parser here reads
    ],
)
def test_what_must_not_be_stored_is_a_value_error(text: str) -> None:
    # Callers catch ValueError alone (json's JSONDecodeError is one); the wording is the parser's.
    with pytest.raises(ValueError):  # noqa: PT011
        calendly_json.loads(text)


def test_the_webhook_envelope_keeps_such_numbers_as_strings() -> None:
    # GIVEN a signed body as Calendly could send it: legal JSON with a huge float and integer
    body = (
        '{"event": "invitee.created", "created_at": "2026-11-02T09:00:00Z", "created_by": null,'
        ' "payload": {"uri": "https://api.calendly.com/scheduled_events/E/invitees/I",'
        ' "questions_and_answers": [{"answer": 1e400, "position": 18446744073709551616}],'
        ' "rescheduled": false, "count": 3, "ratio": 0.5, "odd": NaN}}'
    )

    # WHEN parsed as an envelope
    envelope = parse_envelope(body)

    # THEN those values are their text, the others their JSON values, all writable as strict JSON
    (answered,) = envelope.payload["questions_and_answers"]
    assert answered == {"answer": "1e400", "position": "18446744073709551616"}
    assert envelope.payload["count"] == 3 and envelope.payload["ratio"] == 0.5
    assert envelope.payload["odd"] == "NaN" and envelope.payload["rescheduled"] is False
    assert strict_json(envelope.payload) == envelope.payload
    assert envelope.event == "invitee.created"
    assert envelope.created_at.isoformat() == "2026-11-02T09:00:00+00:00"


@pytest.mark.parametrize(
    "body",
    [
        '{"event": "invitee.created", "created_at": "2026-11-02T09:00:00Z", "payload": {"n": "\\ud800"}}',
        '{"event": "invitee.created", "created_at": "2026-11-02T09:00:00Z", "payload": {"n": '
        + "[" * 5_000
        + "]" * 5_000
        + "}}",
    ],
)
def test_an_envelope_that_cannot_be_stored_is_not_an_envelope(body: str) -> None:
    with pytest.raises(NotAnEnvelope):
        parse_envelope(body)


def test_a_calendly_answer_keeps_such_numbers_as_strings() -> None:
    # GIVEN Calendly answering a page whose event carries numbers past what the bus carries
    raw = json.dumps(listing([{**EVENT, "invitees_counter": {"total": 0, "limit": 0}}]))
    raw = raw.replace('"total": 0', '"total": 1e400').replace('"limit": 0', '"limit": 99999999999999999999')
    client, _ = client_for([answer(raw=raw.encode())], FakeTime())

    # WHEN the poller reads it
    (event,) = client.scheduled_events("ORG")

    # THEN those numbers are their text, the rest as Calendly sent it
    assert event["invitees_counter"] == {"total": "1e400", "limit": "99999999999999999999"}
    assert event["uri"] == f"{BASE}/scheduled_events/AAA"
    assert strict_json(event) == event
