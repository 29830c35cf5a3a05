"""The one bounded, single-flight cache (seg.cache) behind photos, embeddings and embedding files."""

import threading
import time

import pytest

from seg.cache import BoundedCache


def test_hundreds_of_callers_for_one_key_make_it_once():
    cache = BoundedCache(capacity=4)
    calls, answers = [], []
    start = threading.Barrier(200)

    def make():
        calls.append(1)
        time.sleep(0.05)  # long enough for every other caller to arrive while it runs
        return object()

    def ask():
        start.wait()
        answers.append(cache.get_or_make("photo", make))

    threads = [threading.Thread(target=ask) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.made == 1
    assert len(answers) == 200 and all(a is answers[0] for a in answers)


def test_a_caller_arriving_while_the_made_value_is_being_kept_does_not_make_it_again():
    """The moment between `make` returning and the value being kept (its cost is measured then): a
    second caller arriving there waits for the value instead of making its own."""
    second_made = threading.Event()
    answers = []

    def cost(value):
        if not answers:  # the first value's cost: let a second caller in now
            caller = threading.Thread(target=lambda: answers.append(cache.get_or_make("photo", make_again)))
            answers.append(caller)
            caller.start()
            second_made.wait(timeout=0.5)  # with the race, the second caller makes its value within this
        return 1

    def make_again():
        second_made.set()
        return "second"

    cache = BoundedCache(capacity=4, cost=cost)
    assert cache.get_or_make("photo", lambda: "first") == "first"
    answers[0].join(timeout=5)
    assert answers[1:] == ["first"] and not second_made.is_set() and cache.made == 1


def test_different_keys_are_made_side_by_side():
    cache = BoundedCache(capacity=8)
    running, most = [0], [0]
    lock = threading.Lock()

    def make(key):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return key

    threads = [threading.Thread(target=cache.get_or_make, args=(k, lambda k=k: make(k))) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] > 1  # one key's making does not hold up another's
    assert sorted(cache.get(k) for k in range(4)) == [0, 1, 2, 3]


def test_bounded_by_cost_least_recently_used_first_and_dropped_values_are_handed_back():
    dropped = []
    cache = BoundedCache(capacity=10, cost=len, on_drop=lambda key, value: dropped.append(key))
    cache.put("a", "xxxx")
    cache.put("b", "xxxx")
    assert cache.get("a") == "xxxx"  # a is now the most recently used
    cache.put("c", "xxxx")  # 12 > 10: b goes
    assert dropped == ["b"] and "b" not in cache and "a" in cache and "c" in cache
    cache.put("huge", "x" * 50)  # more than the capacity alone: kept, everything else goes
    assert cache.get("huge") == "x" * 50 and len(cache) == 1 and set(dropped) == {"a", "b", "c"}


def test_an_error_keeps_nothing_and_the_next_caller_tries_again():
    cache = BoundedCache(capacity=2)

    def broken():
        raise ValueError("not an image")

    for _ in range(2):
        with pytest.raises(ValueError, match="not an image"):
            cache.get_or_make("bad", broken)
    assert "bad" not in cache and cache.made == 0
    assert cache.get_or_make("bad", lambda: "fixed") == "fixed" and cache.made == 1


def test_a_capacity_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(capacity=0)


def test_a_value_in_use_is_held_past_the_capacity_up_to_the_ceiling():
    """A photo its visitor keeps clicking on survives a flood of photos sent once (the API's handle
    failed mid-session with "no photo is held"); what is held stays under the ceiling."""
    now = [0.0]
    cache = BoundedCache(capacity=3, hold_seconds=600, ceiling=4, clock=lambda: now[0])
    cache.put("mine", 1)
    cache.get("mine")  # clicked on: asked for again
    for i in range(20):  # a flood, each made once and never asked for again
        now[0] += 1
        cache.put(f"flood{i}", 1)
    assert "mine" in cache and len(cache) == 3  # the flood evicts itself, oldest first
    for key in ("second", "third", "fourth"):  # more visitors at work: held too, up to the ceiling
        now[0] += 1
        cache.put(key, 1)
        cache.get(key)
    assert len(cache) == 4 and "mine" in cache  # four held: the ceiling
    cache.put("fifth", 1)
    assert len(cache) == 4 and "mine" not in cache  # past the ceiling the held go too, least recent first
    now[0] += 601  # visitors gone quiet lose the hold: back within the capacity
    cache.put("new", 1)
    assert len(cache) == 3
