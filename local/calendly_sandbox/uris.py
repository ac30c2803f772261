"""Building and reading Calendly-style resource URIs.

Bodies carry URIs under the public base (https://api.calendly.com/users/<uuid>) exactly like the
live API, while clients talk to the sandbox on loopback. Reading is therefore lenient: a reference
is accepted under any base (public or loopback) or as a bare uuid, as long as the collection matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class UriBuilder:
    public_base: str
    scheduling_base: str

    def _api(self, *segments: str) -> str:
        return "/".join([self.public_base.rstrip("/"), *segments])

    def organization(self, uuid: str) -> str:
        return self._api("organizations", uuid)

    def user(self, uuid: str) -> str:
        return self._api("users", uuid)

    def membership(self, uuid: str) -> str:
        return self._api("organization_memberships", uuid)

    def event_type(self, uuid: str) -> str:
        return self._api("event_types", uuid)

    def scheduled_event(self, uuid: str) -> str:
        return self._api("scheduled_events", uuid)

    def invitee(self, event_uuid: str, invitee_uuid: str) -> str:
        return self._api("scheduled_events", event_uuid, "invitees", invitee_uuid)

    def no_show(self, uuid: str) -> str:
        return self._api("invitee_no_shows", uuid)

    def webhook_subscription(self, uuid: str) -> str:
        return self._api("webhook_subscriptions", uuid)

    def routing_form(self, uuid: str) -> str:
        return self._api("routing_forms", uuid)

    def routing_form_submission(self, uuid: str) -> str:
        return self._api("routing_form_submissions", uuid)

    def group(self, uuid: str) -> str:
        return self._api("groups", uuid)

    def scheduling_page(self, *segments: str) -> str:
        return "/".join([self.scheduling_base.rstrip("/"), *segments])


def reference_uuid(reference: str, collection: str) -> str | None:
    """The uuid in `reference` if it names a resource of `collection`, else None.

    `.../users/<uuid>` under any base, or a bare uuid, gives the uuid.
    """
    text = reference.strip()
    if not text:
        return None
    if "/" not in text:
        return text
    segments = [segment for segment in urlsplit(text).path.split("/") if segment]
    if len(segments) >= 2 and segments[-2] == collection:
        return segments[-1]
    return None


def invitee_reference(reference: str) -> tuple[str, str] | None:
    """(event uuid, invitee uuid) from `.../scheduled_events/<e>/invitees/<i>`, else None."""
    segments = [segment for segment in urlsplit(reference.strip()).path.split("/") if segment]
    if len(segments) >= 4 and segments[-4] == "scheduled_events" and segments[-2] == "invitees":
        return segments[-3], segments[-1]
    return None
