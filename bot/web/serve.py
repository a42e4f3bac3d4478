"""Serve the web app with uvicorn on a socket bound first, so that a port taken is one clear line."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from bot.errors import ConfigError


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; a ConfigError saying why if it cannot be had."""
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc


def server(app: FastAPI, *, proxy_headers: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app`` (``.run(sockets=[…])`` serves; ``should_exit`` stops it).
    ``proxy_headers``: trust X-Forwarded-* (only behind a proxy that sets them, as Heroku's router does)."""
    config = uvicorn.Config(app, proxy_headers=proxy_headers, forwarded_allow_ips="*" if proxy_headers else None,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve(app: FastAPI, listening: socket.socket, *, proxy_headers: bool = False) -> None:
    """Run ``app`` on ``listening`` until interrupted."""
    server(app, proxy_headers=proxy_headers).run(sockets=[listening])
