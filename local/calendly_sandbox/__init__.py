"""A local stand-in for the Calendly API v2: a loopback HTTP server plus real, signed webhook deliveries.

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec

with CalendlySandbox(SandboxConfig(seed=7)) as sb:
    token = sb.add_token(TokenSpec(role="owner"))
    sb.seed(scheduled_events=50)
    ...  # point a client at sb.base_url
"""

from .config import ALL_SCOPES, SandboxConfig, TokenSpec
from .delivery import SIGNATURE_HEADER, DeliveryAttempt, DroppedDelivery, signature_header
from .faults import Faults
from .request_log import RequestRecord
from .sandbox import CalendlySandbox
from .state import SeedSummary

__all__ = [
    "ALL_SCOPES",
    "SIGNATURE_HEADER",
    "CalendlySandbox",
    "DeliveryAttempt",
    "DroppedDelivery",
    "Faults",
    "RequestRecord",
    "SandboxConfig",
    "SeedSummary",
    "TokenSpec",
    "signature_header",
]
