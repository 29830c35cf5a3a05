"""Connections below HTTP (ui/connections.py): a request head sent a byte at a time is cut off at
`header_seconds`, and one address holds at most `connections_per_address` connections at once."""

import select
import socket
import time

import httpx
import pytest

from ui import connections
from ui.limits import LIMITS


def connect(server: str, source: str) -> socket.socket:
    host, port = server.split("//")[1].strip("/").split(":")
    return socket.create_connection((host, int(port)), source_address=(source, 0))


def closed(s: socket.socket, timeout: float) -> bool:
    """Whether the server closed `s` within `timeout` seconds (EOF or reset)."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.slow
def test_a_head_sent_a_byte_at_a_time_is_cut_off(server):
    slow = [connect(server, "127.0.0.31") for _ in range(20)]
    started = time.monotonic()
    for s in slow:
        s.sendall(b"GET / HTTP/1.1\r\nHo")
    while time.monotonic() - started < LIMITS.header_seconds - 2:  # a byte every second, never the blank line
        for s in slow:
            s.sendall(b"s")
        time.sleep(1)
    assert not any(closed(s, 0.01) for s in slow)  # within the time: still open
    assert all(closed(s, 5) for s in slow)  # past it: all closed
    print(f"20 slow heads closed {time.monotonic() - started:.1f} s after they began")
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.31"), timeout=30) as client:
        assert client.get(server).status_code == 200  # the address may come back with an honest request


def test_an_address_holds_a_bounded_number_of_connections(server):
    held = [connect(server, "127.0.0.32") for _ in range(LIMITS.connections_per_address + 20)]
    time.sleep(1)  # well within header_seconds: only the cap has closed any
    poll = select.poll()  # select() stops at descriptor 1024
    for s in held:
        poll.register(s, select.POLLIN)
    readable = {fd for fd, _ in poll.poll(0)}
    shut = sum(closed(s, 0) for s in held if s.fileno() in readable)  # readable and empty: closed by the server
    assert shut == 20, shut  # those past the cap were closed before a byte was read
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.33"), timeout=30) as client:
        assert client.get(server).status_code == 200  # another address is served meanwhile
    for s in held:
        s.close()


def test_the_parts_of_uvicorn_relied_on_are_there():
    assert connections.problems() == []
