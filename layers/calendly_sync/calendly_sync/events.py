"""The Calendly webhook event names the stack knows, by the resource their payload carries.

The one list: ``scopes`` pairs each with the scope a subscription to it needs, ``deliveries``
plans a delivery by it. Kept free of imports: the receiver loads it on every cold start.
"""

INVITEE_EVENTS = ("invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted")
EVENT_TYPE_EVENTS = ("event_type.created", "event_type.updated", "event_type.deleted")
ROUTING_FORM_EVENTS = ("routing_form_submission.created",)

#: Names of our own for changes Calendly sends no webhook for (the poller usually finds them).
OWN_EVENTS = ("scheduled_event.updated",)

#: Every ``detail-type`` the publisher puts on the bus (source ``calendly-sync``): Calendly's
#: own webhook names for the changes they announce, then ours.
DOWNSTREAM_EVENTS = INVITEE_EVENTS + EVENT_TYPE_EVENTS + ROUTING_FORM_EVENTS + OWN_EVENTS
