"""The README's runbook scope table says exactly what the code's table (scopes.py) says."""

from __future__ import annotations

import re
from pathlib import Path

from calendly_sync import scopes

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_scope_rows() -> dict[str, tuple[set[str], str]]:
    """``scope -> (calls and events it names, used-for text)`` from the Connect section's table."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Connect (the runbook)") :]
    section = section[: section.index("\n### ", 1)]
    rows: dict[str, tuple[set[str], str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z_]+:(read|write)`", cells[0]):
            rows[cells[0].strip("`")] = (set(re.findall(r"`([^`]+)`", cells[1])), cells[2])
    return rows


def test_the_readme_names_every_scope_with_what_needs_it_as_the_code_does() -> None:
    # Given the README's table and the code's
    rows = readme_scope_rows()

    # Then they list the same scopes, each with the same calls and events
    assert set(rows) == {need.scope for need in scopes.REQUIRED_SCOPES}
    for need in scopes.REQUIRED_SCOPES:
        named, used_for = rows[need.scope]
        assert named == set(need.calls) | set(need.events), need.scope
        # and an optional scope is called optional there, a required one is not
        assert used_for.startswith("optional") == need.optional, need.scope


def test_every_subscribed_event_has_the_scope_calendly_checks_for_it() -> None:
    # api-facts: invitee and no-show events need scheduled_events:read, event_type.* event_types:read,
    # routing-form submissions routing_forms:read (organization scope only)
    assert scopes.EVENT_SCOPE["invitee_no_show.created"] == "scheduled_events:read"
    assert scopes.EVENT_SCOPE["event_type.deleted"] == "event_types:read"
    assert scopes.EVENT_SCOPE["routing_form_submission.created"] == "routing_forms:read"
    assert "routing_form_submission.created" in scopes.events_for("organization")
    assert "routing_form_submission.created" not in scopes.events_for("user")
