"""A failure queue: one SQS message per thing set aside, AWS errors as ``FailureQueueUnavailable``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from calendly_sync.errors import FailureQueueUnavailable


@dataclass(frozen=True, slots=True)
class SqsFailureQueue:
    queue_url: str
    client: Any

    def set_aside(self, message: Mapping[str, Any]) -> None:
        """Send ``message`` (plain JSON: ids and reasons, no personal data) to the queue."""
        try:
            self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=json.dumps(message, ensure_ascii=False, sort_keys=True)
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            raise FailureQueueUnavailable(f"SQS SendMessage failed ({code})") from None
        except BotoCoreError as error:
            raise FailureQueueUnavailable(f"SQS unreachable ({type(error).__name__})") from None
