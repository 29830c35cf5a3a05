"""Places in the queue, counted the moment a request arrives: one client's burst cannot fill it.

Counting the jobs already in Gradio's queue is not enough: a join enters the queue only after it
was let through, so joins that arrive together all see the same count (300 at once from one
address: 258 let in against a limit of 12). Here each join takes a ticket before it is passed on,
in the event loop's one thread with no `await` between the count and the taking, so the count is
exact however many arrive at once. A ticket is given back when the join is refused (by us or by
Gradio), fails, or loses its client; once joined, it is held while its event lives in the queue
(waiting or running) and returned when the event ends, is cancelled or is dropped. The waiting
events are kept in an order that serves addresses in turn (`fair_order`).

    admission = Admission(per_session=3, per_address=12, queue_size=256, is_live=lambda id: ...)
    ticket = admission.admit(session="abc", address="10.0.0.1")   # a Ticket, or a refusal message
    admission.joined(ticket, event_id)                            # the join was accepted
    admission.release(ticket)                                     # refused or failed
    queue[:] = admission.fair_order(queue, running)               # addresses served in turn
"""

from collections.abc import Callable
from dataclasses import dataclass

from .gradio_private import event_id


@dataclass(eq=False)
class Ticket:
    """One place in the queue: whose it is and, once joined, the event that holds it."""

    session: str | None
    address: str
    event_id: str | None = None


class Admission:
    """Args:
        per_session: places one browser session may hold (queued or running).
        per_address: places one address may hold (several tabs, several scripts).
        queue_size: the queue's places in all; a client's share is also capped so that at least
            `reserve` places stay free for others whoever sends what.
        is_live: whether an event id is still waiting or running in the queue.
    """

    def __init__(self, *, per_session: int, per_address: int, queue_size: int, is_live: Callable[[str], bool],
                 reserve: int | None = None):
        if per_session < 1 or per_address < per_session:
            raise ValueError(f"per_session ({per_session}) must be at least 1 and per_address ({per_address}) "
                             "at least per_session")
        self.reserve = per_address if reserve is None else reserve
        if per_address + self.reserve > queue_size:
            raise ValueError(f"a queue of {queue_size} places cannot give one address {per_address} and keep "
                             f"{self.reserve} for others: enlarge the queue or lower the per-address limit")
        self.per_session, self.per_address, self.queue_size = per_session, per_address, queue_size
        self.is_live = is_live
        self._tickets: list[Ticket] = []

    def held(self) -> list[Ticket]:
        """The tickets still held; those whose event has left the queue are returned first."""
        self._tickets = [t for t in self._tickets if t.event_id is None or self.is_live(t.event_id)]
        return list(self._tickets)

    def admit(self, *, session: str | None, address: str) -> Ticket | str:
        """A ticket for a join from `session` at `address`, or why it is refused (a message for the
        client). Must be called from the event loop's thread, with no await before `joined`/`release`
        is arranged: the count and the taking are one step."""
        held = self.held()
        mine = sum(1 for t in held if session and t.session == session)
        if mine >= self.per_session:
            return (f"busy: you already have {mine} requests queued or running (the limit is "
                    f"{self.per_session}); retry when one has finished")
        near = sum(1 for t in held if t.address == address)
        if near >= self.per_address:
            return (f"busy: {near} requests from your address are queued or running (the limit is "
                    f"{self.per_address}); retry when one has finished")
        if len(held) >= self.queue_size - self.reserve and near > 0:
            # the queue is nearly full: its last places go to clients that hold none yet
            return (f"busy: the queue is nearly full ({len(held)} of {self.queue_size} places) and you already "
                    "have a request in it; retry when it has finished")
        if len(held) >= self.queue_size:
            return f"busy: the queue is full ({self.queue_size} requests); retry in a few seconds"
        ticket = Ticket(session=session or None, address=address)
        self._tickets.append(ticket)
        return ticket

    def fair_order(self, waiting: list, running: list) -> list:
        """`waiting` (events with an `_id`, oldest first) in the order that serves addresses in turn: an
        address's k-th job (counting its `running` ones first) goes after every other address's
        (k-1)-th, oldest first among equals. Gradio serves its queue in arrival order, so 12 jobs
        sent at once by one address would otherwise all run before a job sent a moment later."""
        owner = {t.event_id: t.address for t in self.held() if t.event_id}
        count: dict[str, int] = {}
        for event in running:
            who = owner.get(event_id(event), event_id(event))
            count[who] = count.get(who, 0) + 1
        ranked = []
        for arrival, event in enumerate(waiting):
            who = owner.get(event_id(event), event_id(event))  # an event we did not admit is its own client
            count[who] = count.get(who, 0) + 1
            ranked.append((count[who], arrival, event))
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
