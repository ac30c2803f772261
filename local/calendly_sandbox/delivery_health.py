"""Calendly's retry bookkeeping per subscription: the delivery worker reports each outcome here.

A first failure opens the subscription's retry window (`retry_started_at`); a success closes it;
a failure once the window has passed disables the subscription.
"""

from __future__ import annotations

from dataclasses import dataclass

from .world import World


@dataclass(frozen=True)
class FailureVerdict:
    disabled: bool
    window_ends_monotonic: float  # retries scheduled past this moment are pointless


class DeliveryHealth(World):
    def delivery_target(self, subscription_uuid: str) -> tuple[str, str | None] | None:
        """(callback url, signing key) while the subscription can still receive deliveries."""
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is None or subscription.state != "active":
                return None
            return subscription.callback_url, subscription.signing_key

    def note_delivery_success(self, subscription_uuid: str) -> None:
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is not None and subscription.state == "active" and subscription.retry_started_at:
                subscription.retry_started_at = None
                subscription.retry_started_monotonic = None
                subscription.updated_at = self.clock.after(subscription.updated_at)

    def note_delivery_failure(self, subscription_uuid: str, monotonic_now: float) -> FailureVerdict:
        window = self.config.delivery_retry_window_seconds
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is None or subscription.state != "active":
                return FailureVerdict(disabled=True, window_ends_monotonic=monotonic_now)
            if subscription.retry_started_monotonic is None:
                subscription.retry_started_monotonic = monotonic_now
                subscription.retry_started_at = self.clock.now()
                subscription.updated_at = self.clock.after(subscription.updated_at)
            window_ends = subscription.retry_started_monotonic + window
            if monotonic_now >= window_ends:
                subscription.state = "disabled"
                subscription.updated_at = self.clock.after(subscription.updated_at)
                return FailureVerdict(disabled=True, window_ends_monotonic=window_ends)
            return FailureVerdict(disabled=False, window_ends_monotonic=window_ends)
