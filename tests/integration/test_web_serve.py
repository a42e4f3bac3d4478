"""The web app's listening socket (``bot.web.serve.listen``), on loopback."""

from __future__ import annotations

import socket

from bot.web.serve import listen


def test_connections_send_small_writes_at_once() -> None:
    # Without TCP_NODELAY a response written as headers then body waited for the client's delayed
    # ACK: 40 ms more for every request on a kept-alive connection. asyncio sets it only on
    # sockets of protocol IPPROTO_TCP, which socket.create_server's are not; accepted sockets
    # inherit it from the listening one.
    with listen("127.0.0.1", 0) as listening, socket.create_connection(listening.getsockname()):
        accepted, _ = listening.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
