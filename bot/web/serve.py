"""Serve the web app with uvicorn on a socket bound first, so that a port taken is one clear line."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from bot.errors import ConfigError


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; a ConfigError saying why if it cannot be had.

    Its connections send small writes at once (TCP_NODELAY, which they inherit from it). asyncio
    sets that only on sockets made with protocol IPPROTO_TCP, and ``socket.create_server`` makes
    them with 0: without it, a response's headers and body went as two writes, the second held
    back by Nagle's algorithm until the client's delayed ACK, and every request on a kept-alive
    connection took 40 ms more (bench/NOTES.md).
    """
    try:
        listening = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


def server(app: FastAPI, *, proxy_headers: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app`` (``.run(sockets=[…])`` serves; ``should_exit`` stops it).
    ``proxy_headers``: trust X-Forwarded-* (only behind a proxy that sets them, as Heroku's router does)."""
    config = uvicorn.Config(app, proxy_headers=proxy_headers, forwarded_allow_ips="*" if proxy_headers else None,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve(app: FastAPI, listening: socket.socket, *, proxy_headers: bool = False) -> None:
    """Run ``app`` on ``listening`` until interrupted."""
    server(app, proxy_headers=proxy_headers).run(sockets=[listening])
