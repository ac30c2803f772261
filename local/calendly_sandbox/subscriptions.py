"""Webhook subscriptions, and which of them Calendly notifies about a change."""

from __future__ import annotations

from .models import SubscriptionScope, WebhookEvent, WebhookSubscription
from .world import World


class Subscriptions(World):
    def add_subscription(
        self,
        callback_url: str,
        events: list[str],
        scope: SubscriptionScope,
        user_uuid: str | None,
        group: str | None,
        creator_uuid: str,
        signing_key: str | None,
    ) -> WebhookSubscription:
        with self.lock:
            now = self.clock.now()
            subscription = WebhookSubscription(
                uuid=self.new_uuid(),
                callback_url=callback_url,
                events=list(dict.fromkeys(events)),
                scope=scope,
                user_uuid=user_uuid,
                group=group,
                creator_uuid=creator_uuid,
                signing_key=signing_key,
                created_at=now,
                updated_at=now,
            )
            self.subscriptions[subscription.uuid] = subscription
            return subscription

    def subscription_by_url(self, callback_url: str) -> WebhookSubscription | None:
        with self.lock:
            return next((s for s in self.subscriptions.values() if s.callback_url == callback_url), None)

    def recipients(self, event: WebhookEvent) -> list[WebhookSubscription]:
        """Active subscriptions that Calendly would notify about `event`."""
        with self.lock:
            return [
                subscription
                for subscription in self.subscriptions.values()
                if subscription.state == "active"
                and event.name in subscription.events
                and (
                    subscription.scope == "organization"
                    or (subscription.scope == "user" and subscription.user_uuid == event.host_uuid)
                )
            ]
