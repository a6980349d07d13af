"""Login throttling: failed logins counted per account and per client address, with exponential backoff.

Why hand-written rather than a rate-limit library (`limits` and the like): those count requests in windows,
while what a login needs is *backoff after failures* that a success clears; that is a few lines here.
A guesser gets `free_failures` tries for free, then must wait `base_delay_s`, then twice that after the
next failure, and so on up to `max_delay_s`; an address gets more free tries than an account (several
people behind one NAT). Counts are forgotten `forget_after_s` after the last failure. The table is bounded
(least recently failed keys dropped first), so a spray of random usernames cannot grow memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT = "account"
ADDRESS = "address"


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    until: float  # monotonic time before which no attempt is heard


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures pass freely, and how the wait grows after them."""

    free_failures: int
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0

    def delay_s(self, failures: int) -> float:
        beyond = failures - self.free_failures
        return 0.0 if beyond < 0 else min(self.base_delay_s * 2 ** min(beyond, 30), self.max_delay_s)


class LoginThrottle:
    """Thread-safe: the login route runs in the web server's thread pool."""

    def __init__(
        self,
        account: ThrottlePolicy = ThrottlePolicy(5),
        address: ThrottlePolicy = ThrottlePolicy(20),
        forget_after_s: float = 3600.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policies = {ACCOUNT: account, ADDRESS: address}
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0  # attempts answered 429 without checking the password

    def retry_after(self, username: str, address: str) -> tuple[float, str | None]:
        """(seconds to wait, ACCOUNT or ADDRESS) before this attempt may be heard; (0, None) if it may now."""
        now = self._clock()
        worst: tuple[float, str | None] = (0.0, None)
        with self._lock:
            for key in ((ACCOUNT, username), (ADDRESS, address)):
                entry = self._failures.get(key)
                if entry is not None and entry.until > now and entry.until - now > worst[0]:
                    worst = (entry.until - now, key[0])
            if worst[1] is not None:
                self.refused += 1
        return worst

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for kind, value in ((ACCOUNT, username), (ADDRESS, address)):
                key = (kind, value)
                entry = self._failures.pop(key, None)
                if entry is None or now - entry.last > self.forget_after_s:
                    entry = _Failures(0, now, now)
                entry.count += 1
                entry.last = now
                entry.until = now + self.policies[kind].delay_s(entry.count)
                self._failures[key] = entry  # most recent last
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, address: str) -> None:
        """The right password: the account's count is cleared (the address's stays: it may be guessing others)."""
        with self._lock:
            self._failures.pop((ACCOUNT, username), None)

    def failures(self, kind: str, value: str) -> int:
        with self._lock:
            entry = self._failures.get((kind, value))
            return 0 if entry is None else entry.count


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a client told 0 would retry at once)."""
    return str(max(1, math.ceil(seconds)))
