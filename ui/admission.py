"""Places in the queue, counted the moment a request arrives: one client's burst cannot fill it.

Counting the jobs already in Gradio's queue is not enough: a join enters the queue only after it
was let through, so joins that arrive together all see the same count (300 at once from one
address: 258 let in against a limit of 12). Here each join takes a ticket before it is passed on,
in the event loop's one thread with no `await` between the count and the taking, so the count is
exact however many arrive at once. A ticket is given back when the join is refused (by us or by
Gradio), fails, or loses its client; once joined, it is held while its event lives in the queue
(waiting or running) and returned when the event ends, is cancelled or is dropped.

Fair by cost, not by turn: each event kind's cost is learned from its runs (`ran`), and the waiting
events are ordered by what their address would have received if each ran next: the seconds of work
it received within the last `window` seconds, plus its running and earlier waiting jobs, plus this
job. Served in turn, an honest visitor's small job waited behind every other address's first job
(beside 50 addresses of heavy jobs, waits of 124 s and 253 s); ordered by cost it goes ahead of any
address whose account is larger, which one heavy job makes it. The queue also holds at most `work_seconds` of
estimated work: past it a heavy job is refused with the wait until enough has drained, while a light
one (`light_seconds` or less) still gets in.

    admission = Admission(per_session=3, per_address=12, queue_size=256, is_live=lambda id: ..., slots=2,
                          work_seconds=900, light_seconds=2, window=60)
    ticket = admission.admit(session="abc", address="10.0.0.1", kind="segment")  # a Ticket, or a Busy
    admission.joined(ticket, event_id)                            # the join was accepted
    admission.release(ticket)                                     # refused or failed
    admission.ran(event_id, seconds)                              # it ran: its address and kind learn
    queue[:] = admission.fair_order(queue, running)               # lightest account first
"""

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .gradio_private import event_id, is_live, running_events, waiting_lists

# seconds: an event kind's cost before it has run once. Assumed heavy: a crowd's first jobs of a new
# kind, guessed light, all went ahead of a visitor whose light jobs had already run and been learned
FIRST_GUESS = 5.0
LEARN = 0.3  # how far one run moves a kind's estimate (an exponential average)


class Busy(NamedTuple):
    """A refused join: the message, and the seconds after which a retry can pass (`Retry-After`)."""

    message: str
    retry_after: int


@dataclass(eq=False)
class Ticket:
    """One place in the queue: whose it is and, once joined, the event that holds it."""

    session: str | None
    address: str
    kind: str = "?"  # the event's function, by which its cost is learned
    cost: float = FIRST_GUESS  # its estimated seconds when it was admitted
    event_id: str | None = None


class Admission:
    """Args:
        per_session: places one browser session may hold (queued or running).
        per_address: places one address may hold (several tabs, several scripts).
        queue_size: the queue's places in all; a client's share is also capped so that at least
            `reserve` places stay free for others whoever sends what.
        is_live: whether an event id is still waiting or running in the queue.
        slots: jobs that run at once (how fast queued work drains).
        work_seconds: estimated seconds of work the queue may hold; past it, heavy joins are refused.
        light_seconds: a job estimated at most this is never refused for the queue's work.
        window: seconds of an address's past work that count against it.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, *, per_session: int, per_address: int, queue_size: int, is_live: Callable[[str], bool],
                 reserve: int | None = None, slots: int = 1, work_seconds: float = float("inf"),
                 light_seconds: float = 2, window: float = 60, clock: Callable[[], float] = time.monotonic):
        if per_session < 1 or per_address < per_session:
            raise ValueError(f"per_session ({per_session}) must be at least 1 and per_address ({per_address}) "
                             "at least per_session")
        self.reserve = per_address if reserve is None else reserve
        if per_address + self.reserve > queue_size:
            raise ValueError(f"a queue of {queue_size} places cannot give one address {per_address} and keep "
                             f"{self.reserve} for others: enlarge the queue or lower the per-address limit")
        self.per_session, self.per_address, self.queue_size = per_session, per_address, queue_size
        self.is_live, self.slots, self.work_seconds, self.light_seconds = is_live, slots, work_seconds, light_seconds
        self.window, self.clock = window, clock
        self._tickets: list[Ticket] = []
        self._costs: dict[str, float] = {}  # kind -> estimated seconds
        self._received: dict[str, deque] = defaultdict(deque)  # address -> (when, seconds) of its runs

    def estimate(self, kind: str) -> float:
        """The estimated seconds of one event of `kind` (FIRST_GUESS until one has run)."""
        return self._costs.get(kind, FIRST_GUESS)

    def received(self, address: str) -> float:
        """Seconds of work `address`'s jobs received within the last `window` seconds."""
        runs, cutoff = self._received.get(address), self.clock() - self.window
        while runs and runs[0][0] < cutoff:
            runs.popleft()
        if not runs:
            self._received.pop(address, None)
            return 0.0
        return sum(seconds for _, seconds in runs)

    def ran(self, event: str, seconds: float) -> None:
        """The event ran for `seconds`: its address is charged, and its kind's estimate learns."""
        ticket = next((t for t in self._tickets if t.event_id == event), None)
        if ticket is None:
            return
        self._received[ticket.address].append((self.clock(), seconds))
        old = self._costs.get(ticket.kind)
        self._costs[ticket.kind] = seconds if old is None else old + LEARN * (seconds - old)

    def held(self) -> list[Ticket]:
        """The tickets still held; those whose event has left the queue are returned first."""
        self._tickets = [t for t in self._tickets if t.event_id is None or self.is_live(t.event_id)]
        return list(self._tickets)

    def admit(self, *, session: str | None, address: str, kind: str = "?") -> "Ticket | Busy":
        """A ticket for a join of `kind` from `session` at `address`, or why it is refused (a message for
        the client, and when to retry). Must be called from the event loop's thread, with no await
        before `joined`/`release` is arranged: the count and the taking are one step."""
        held, cost = self.held(), self.estimate(kind)
        mine = [t for t in held if session and t.session == session]
        near = [t for t in held if t.address == address]
        if len(mine) >= self.per_session:
            soon = self.drained(mine[0])
            return Busy(f"busy: you already have {len(mine)} requests queued or running (the limit is "
                        f"{self.per_session}); retry when one has finished, in about {soon} s", soon)
        soon = self.drained(near[0] if near else held[0] if held else None)  # its oldest is done first
        if len(near) >= self.per_address:
            return Busy(f"busy: {len(near)} requests from your address are queued or running (the limit is "
                        f"{self.per_address}); retry when one has finished, in about {soon} s", soon)
        if len(held) >= self.queue_size - self.reserve and near:
            # the queue is nearly full: its last places go to clients that hold none yet
            return Busy(f"busy: the queue is nearly full ({len(held)} of {self.queue_size} places) and you "
                        f"already have a request in it; retry when it has finished, in about {soon} s", soon)
        if len(held) >= self.queue_size:
            return Busy(f"busy: the queue is full ({self.queue_size} requests); retry in about {soon} s", soon)
        queued = sum(t.cost for t in held)
        if cost > self.light_seconds and queued + cost > self.work_seconds:
            wait = max(1, round((queued + cost - self.work_seconds) / self.slots))
            return Busy(f"busy: the server has about {queued / self.slots:.0f} s of work queued, and this request "
                        f"takes about {cost:.0f} s; retry in about {wait} s (lighter requests still get in)", wait)
        ticket = Ticket(session=session or None, address=address, kind=kind, cost=cost)
        self._tickets.append(ticket)
        return ticket

    def drained(self, ticket: "Ticket | None") -> int:
        """Whole seconds until `ticket`'s job is likely done: the work ahead of it over the slots."""
        if ticket is None:
            return 1
        ahead = sum(t.cost for t in self._tickets[:self._tickets.index(ticket) + 1])
        return max(1, round(ahead / self.slots))

    def fair_order(self, waiting: list, running: list) -> list:
        """`waiting` (events with an `_id`, oldest first) ordered by their address's account if each ran
        next: the work it received within the window, its running jobs' and earlier waiting jobs'
        estimates, and this job's; oldest first among equals. Gradio serves its queue in arrival
        order, so 12 jobs sent at once by one address would otherwise all run before a job sent a
        moment later, and 50 addresses' heavy jobs before a light one."""
        tickets = {t.event_id: t for t in self.held() if t.event_id}

        def owner_and_cost(event) -> tuple[str, float]:
            ticket = tickets.get(event_id(event))
            return (ticket.address, ticket.cost) if ticket else (event_id(event), FIRST_GUESS)  # not admitted by us

        account: dict[str, float] = {}
        for event in running:
            who, cost = owner_and_cost(event)
            account[who] = account.get(who, self.received(who)) + cost
        ranked = []
        for arrival, event in enumerate(waiting):
            who, cost = owner_and_cost(event)
            account[who] = account.get(who, self.received(who)) + cost
            ranked.append((account[who], arrival, event))
        return [event for _, _, event in sorted(ranked, key=lambda r: r[:2])]

    def joined(self, ticket: Ticket, event_id: str | None) -> None:
        """The join was accepted as `event_id`: the place is held while the event lives. Without an
        id (an answer we cannot read), the place is returned."""
        if event_id:
            ticket.event_id = event_id
        else:
            self.release(ticket)

    def release(self, ticket: Ticket) -> None:
        """Give the place back (the join was refused, failed, or its client left)."""
        if ticket in self._tickets:
            self._tickets.remove(ticket)


def make_admission(blocks, limits, *, slots: int = 1) -> Admission:
    """The queue's admission for `blocks` (a queued `gr.Blocks`) with `limits`' caps (a `ui.limits.Limits`)
    and `slots` jobs at once."""
    return Admission(per_session=limits.jobs_per_client, per_address=limits.jobs_per_address,
                     queue_size=limits.queue_size, is_live=lambda event: is_live(blocks, event),
                     slots=slots, work_seconds=limits.queue_work_seconds,
                     light_seconds=limits.light_job_seconds, window=limits.fair_window_seconds)


def serve_in_turn(blocks, admission: Admission) -> None:
    """Reorder Gradio's waiting events, lightest account first (`Admission.fair_order`). In the event
    loop's thread with no await: Gradio takes the next event in that same thread."""
    running = running_events(blocks)
    for waiting in waiting_lists(blocks):
        if len(waiting) > 1:
            waiting[:] = admission.fair_order(waiting, running)
