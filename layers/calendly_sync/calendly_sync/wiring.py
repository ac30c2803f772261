"""What ValidateCredentialsFunction and WebhookSubscriptionFunction hand ``connect_and_subscribe``.

Both functions work with the same collaborators; building them here keeps the two handlers
thin and alike. The receiver's handler wires its own (it must not load ``connect_and_subscribe``).
"""

from __future__ import annotations

from functools import partial

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import SigningKeySecret, TokenSecret
from calendly_sync.connect_and_subscribe import OperationsDependencies
from calendly_sync.settings import Settings


def operations_dependencies(settings: Settings) -> OperationsDependencies:
    age = settings.secret_max_age_seconds
    return OperationsDependencies(
        settings=settings,
        table=CalendlyTable(settings.table_name),
        token=TokenSecret(settings.token_secret_id, age),
        signing_keys=SigningKeySecret(settings.signing_key_secret_id, age),
        # Interactive calls: answered at once, never retried.
        calendly=partial(CalendlyClient, settings.calendly_api_base_url),
    )
