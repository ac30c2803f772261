"""Webhook delivery the way Calendly does it: signed POSTs from a background worker, retried with
exponential back-off inside a retry window, after which the subscription is disabled.

A scheduler thread keeps a heap of due deliveries and hands them to a small pool of senders, so a
slow or failing endpoint never holds back later deliveries (which is also why order is not
guaranteed, just like the real service).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

import requests

from .config import SandboxConfig
from .faults import Faults
from .state import FailureVerdict

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
DeliveryFault = Literal["duplicate", "bad_signature"]


def signature_header(signing_key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`, as Calendly signs deliveries."""
    digest = hmac.new(signing_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class SubscriptionHealth(Protocol):
    """What the worker needs from the state: where to send, and where to report outcomes."""

    def delivery_target(self, subscription_uuid: str) -> tuple[str, str | None] | None: ...

    def note_delivery_success(self, subscription_uuid: str) -> None: ...

    def note_delivery_failure(self, subscription_uuid: str, monotonic_now: float) -> FailureVerdict: ...


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST the sandbox made to a callback URL."""

    subscription_uri: str
    callback_url: str
    event: str
    payload_uri: str | None
    attempt: int  # 1 for the first try, then 2, 3, ... for retries
    status_code: int | None  # None when the request itself failed (refused, timed out)
    error: str | None
    signature: str | None  # header value sent, None when the subscription has no signing key
    ok: bool
    sent_at: float  # epoch seconds
    body: bytes
    fault: DeliveryFault | None = None


@dataclass(frozen=True)
class DroppedDelivery:
    """A delivery the drop fault swallowed: never sent and never retried."""

    subscription_uri: str
    event: str
    payload_uri: str | None
    attempt: int


@dataclass
class _Job:
    subscription_uuid: str
    subscription_uri: str
    event: str
    payload_uri: str | None
    body: bytes  # fixed at enqueue time so retries resend exactly the same bytes
    attempt: int = 1


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    job: _Job = field(compare=False)


class DeliveryWorker:
    def __init__(self, config: SandboxConfig, faults: Faults, health: SubscriptionHealth) -> None:
        self._config = config
        self._faults = faults
        self._health = health
        self._condition = threading.Condition()
        self._heap: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._in_flight = 0
        self._stopping = False
        self._attempts: list[DeliveryAttempt] = []
        self._dropped: list[DroppedDelivery] = []
        self._records_lock = threading.Lock()
        self._sessions_lock = threading.Lock()
        self._sessions: list[requests.Session] = []
        self._thread_local = threading.local()
        self._executor = ThreadPoolExecutor(
            config.delivery_concurrency, thread_name_prefix="sandbox-delivery"
        )
        self._scheduler = threading.Thread(
            target=self._schedule_forever, name="sandbox-scheduler", daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._heap.clear()
            self._condition.notify_all()
        if self._scheduler.is_alive():
            self._scheduler.join(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    # -- producer side ----------------------------------------------------------------------------

    def enqueue(
        self, subscription_uuid: str, subscription_uri: str, event: str, payload_uri: str | None, body: bytes
    ) -> None:
        job = _Job(subscription_uuid, subscription_uri, event, payload_uri, body)
        self._schedule(job, time.monotonic() + self._faults.reorder_hold(self._config.reorder_hold_seconds))

    def forget(self, subscription_uuid: str) -> None:
        """Discard queued deliveries of a deleted or disabled subscription."""
        with self._condition:
            self._heap = [item for item in self._heap if item.job.subscription_uuid != subscription_uuid]
            heapq.heapify(self._heap)
            self._condition.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        """True once nothing is queued or being sent; False if `timeout` passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._heap and self._in_flight == 0, timeout)

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._heap) + self._in_flight

    @property
    def attempts(self) -> list[DeliveryAttempt]:
        with self._records_lock:
            return list(self._attempts)

    @property
    def dropped(self) -> list[DroppedDelivery]:
        with self._records_lock:
            return list(self._dropped)

    def clear_records(self) -> None:
        with self._records_lock:
            self._attempts.clear()
            self._dropped.clear()

    # -- scheduler --------------------------------------------------------------------------------

    def _schedule(self, job: _Job, due: float) -> None:
        with self._condition:
            if self._stopping:
                return
            heapq.heappush(self._heap, _Scheduled(due, next(self._sequence), job))
            self._condition.notify_all()

    def _schedule_forever(self) -> None:
        while True:
            with self._condition:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0].due <= now:
                        break
                    self._condition.wait(self._heap[0].due - now if self._heap else None)
                if self._stopping:
                    return
                now = time.monotonic()
                batch: list[_Job] = []
                while self._heap and self._heap[0].due <= now:
                    batch.append(heapq.heappop(self._heap).job)
                self._in_flight += len(batch)
            self._faults.shuffle(batch)
            for job in batch:
                try:
                    self._executor.submit(self._deliver, job)
                except RuntimeError:  # executor already shut down: we are stopping
                    self._finish()

    def _finish(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    # -- one delivery -----------------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        try:
            self._deliver_once(job)
        finally:
            self._finish()

    def _deliver_once(self, job: _Job) -> None:
        target = self._health.delivery_target(job.subscription_uuid)
        if target is None:  # deleted or disabled since it was queued
            return
        callback_url, signing_key = target
        if self._faults.should_drop():
            with self._records_lock:
                self._dropped.append(
                    DroppedDelivery(job.subscription_uri, job.event, job.payload_uri, job.attempt)
                )
            return
        delivered = self._post(job, callback_url, signing_key, fault=None)
        if self._faults.should_duplicate():
            self._post(job, callback_url, signing_key, fault="duplicate")
        if delivered:
            self._health.note_delivery_success(job.subscription_uuid)
            return
        now = time.monotonic()
        verdict = self._health.note_delivery_failure(job.subscription_uuid, now)
        if verdict.disabled:
            self.forget(job.subscription_uuid)
            return
        backoff = min(
            self._config.delivery_initial_backoff_seconds
            * self._config.delivery_backoff_factor ** (job.attempt - 1),
            self._config.delivery_max_backoff_seconds,
        )
        # The last retry happens exactly when the window closes; failing it disables the subscription.
        job.attempt += 1
        self._schedule(job, min(now + backoff, verdict.window_ends_monotonic))

    def _post(
        self, job: _Job, callback_url: str, signing_key: str | None, fault: DeliveryFault | None
    ) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "Calendly-Sandbox-Webhooks/1.0"}
        key = signing_key
        if self._faults.should_forge_signature():
            key = f"forged-{signing_key or 'key'}"
            fault = fault or "bad_signature"
        signature = signature_header(key, int(time.time()), job.body) if key is not None else None
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        status_code: int | None = None
        error: str | None = None
        try:
            response = self._session().post(
                callback_url,
                data=job.body,
                headers=headers,
                timeout=(
                    self._config.delivery_connect_timeout_seconds,
                    self._config.delivery_timeout_seconds,
                ),
                allow_redirects=False,  # a 3xx is a failed delivery, as with Calendly
            )
            status_code = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status_code is not None and 200 <= status_code < 300
        attempt = DeliveryAttempt(
            subscription_uri=job.subscription_uri,
            callback_url=callback_url,
            event=job.event,
            payload_uri=job.payload_uri,
            attempt=job.attempt,
            status_code=status_code,
            error=error,
            signature=signature,
            ok=ok,
            sent_at=time.time(),
            body=job.body,
            fault=fault,
        )
        with self._records_lock:
            self._attempts.append(attempt)
        return ok

    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe, so each sender thread keeps its own.
        session: requests.Session | None = getattr(self._thread_local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # loopback callbacks must never go through a proxy from the environment
            self._thread_local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session
