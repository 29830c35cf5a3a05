"""One bounded, single-flight cache for everything computed once per content and kept a while: the
decoded photos, SAM's image embeddings, the embedding files a browser fetches.

    embeddings = BoundedCache(capacity=8)                          # eight values, each costing 1
    photos = BoundedCache(capacity=64 << 20, cost=lambda p: p.pixels.nbytes)
    value = embeddings.get_or_make(key, lambda: encode(image))     # made once, whoever asks first

Least recently used values are dropped first once their total cost passes `capacity`, but never the
value just made, however costly. Two threads asking for the same missing key make it once: the
second waits for the first. A `make` that raises keeps nothing, and the waiters then try for
themselves (so an error reaches every caller with its own message). Thread-safe.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Args:
        capacity: the most total cost kept (at least 1).
        cost: a value's cost (default 1 each: `capacity` is then a count).
        on_drop: called with (key, value) after a value is dropped, outside the lock (e.g. to remove
            a file the value names).
        hold_seconds: a value asked for again (after it was made) within this many seconds is kept
            past `capacity`: someone is working on it, and a flood of values made once and never
            asked for again must not take it from them. Up to `ceiling`.
        ceiling: the most total cost kept even so (default: `capacity`, so nothing is held).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, *, capacity: int, cost: Callable[[V], int] = lambda value: 1,
                 on_drop: Callable[[K, V], None] | None = None, hold_seconds: float = 0,
                 ceiling: int | None = None, clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError(f"a cache's capacity must be at least 1, got {capacity}")
        self.capacity, self.cost, self.on_drop = capacity, cost, on_drop
        self.hold_seconds, self.ceiling, self.clock = hold_seconds, max(capacity, ceiling or capacity), clock
        self._used: dict[K, tuple[float, int]] = {}  # when each value was last asked for, and how often
        self._values: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._making: dict[K, threading.Lock] = {}  # one lock per key being made
        self.made = 0  # how many times a `make` returned (for tests and benchmarks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._values

    def get(self, key: K) -> V | None:
        """The value kept under `key` (now the most recently used), or None."""
        with self._lock:
            if key not in self._values:
                return None
            self._values.move_to_end(key)
            self._asked(key)
            return self._values[key][0]

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value under `key`, made by `make()` if it is not kept; one `make` per key at a time."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self._asked(key)
                return self._values[key][0]
            making = self._making.setdefault(key, threading.Lock())
        with making:  # a second caller for this key waits here for the first
            found = self.get(key)
            if found is not None:
                return found
            try:
                value = make()
            except BaseException:
                with self._lock:
                    self._making.pop(key, None)
                raise
            self._keep(key, value, made=True)
            return value

    def _asked(self, key: K) -> None:
        """Under the lock: `key`'s value was asked for now."""
        self._used[key] = (self.clock(), self._used.get(key, (0.0, 0))[1] + 1)

    def put(self, key: K, value: V) -> None:
        """Keep `value` under `key` (replacing what was there), then drop the least recently used
        values until the total cost fits `capacity` (those used within `hold_seconds` only past
        `ceiling`), or only this one is left."""
        self._keep(key, value, made=False)

    def _keep(self, key: K, value: V, *, made: bool) -> None:
        """`put`; for a value just `made`, the key stops being made in the same hold of the lock that
        keeps it, so no caller in between finds it neither kept nor being made (and makes it again)."""
        cost = self.cost(value)
        dropped = []
        with self._lock:
            if made:
                self.made += 1
                self._making.pop(key, None)
            if key in self._values:
                self._total -= self._values.pop(key)[1]
            self._values[key] = (value, cost)
            self._used[key] = (now := self.clock(), 0)
            self._total += cost
            for old_key in list(self._values)[:-1]:  # oldest first, never the value just kept
                if self._total <= self.capacity:
                    break
                when, asked = self._used.get(old_key, (0.0, 0))
                if self._total <= self.ceiling and asked and now - when < self.hold_seconds:
                    continue  # in use: kept while the ceiling allows
                old, old_cost = self._values.pop(old_key)
                self._used.pop(old_key, None)
                self._total -= old_cost
                dropped.append((old_key, old))
        if self.on_drop is not None:
            for old_key, old in dropped:
                self.on_drop(old_key, old)
