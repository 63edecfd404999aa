"""Rate limit on authentication failures, per client address, in process.

A sliding-window log: for each client address the times of its last ``limit``
failed authentications (a key presented but unknown, malformed or revoked). When
``limit`` failures fall within ``window`` seconds, further failures from that
address are answered 429 with ``Retry-After`` (the seconds until the oldest of them
leaves the window) instead of 401; each refused attempt counts as a failure, so an
address that keeps guessing stays blocked.

Successful authentication is never limited: a valid key is accepted even from a
blocked address (a kiosk behind the same NAT as a misconfigured one keeps working),
and keys are 256 random bits, so the limit is not what stops guessing; it keeps a
noisy client from hammering the key store and makes it visible in the logs
(``auth.rate_limited``). A request without any key is a plain 401 and does not
count. The state lives in the API process (each worker limits on its own) and
holds at most ``max_clients`` addresses (least recently failing forgotten first).
The address is the TCP peer's: behind a reverse proxy, limit there as well.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class AuthFailureLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may fail again without a 429, or None if it may now."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(client)
            if times is None or len(times) < self.limit:
                return None
            wait = times[0] + self.window - now
        return math.ceil(wait) if wait > 0 else None

    def failed(self, client: str) -> int | None:
        """Record a failure; the Retry-After seconds if ``client`` is now over the limit
        (this failure included: the ``limit``-th failure in the window is still a 401)."""
        blocked = self.retry_after(client)
        now = self.clock()
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        return blocked

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
