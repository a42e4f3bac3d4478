"""Serve the web app with uvicorn on a socket bound first, so that a port taken is one clear line;
in one process, or in several forked to serve the same socket."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from bot.errors import ConfigError

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # a process that died within this of its start is started again after as long


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


def serve(
    app: FastAPI,
    listening: socket.socket,
    *,
    proxy_headers: bool = False,
    workers: int = 1,
    after_fork: Callable[[], None] | None = None,
) -> None:
    """Run ``app`` on ``listening`` until interrupted (SIGINT or SIGTERM).

    With ``workers`` > 1 this process forks that many, each serving ``app`` on the same socket
    (the kernel shares the connections out), and watches them: one that dies is started again,
    and a signal to this one stops them all. One Python process serves on one core at most (its
    GIL); the app keeps nothing between requests that its processes must share, but each counts
    its own rate limits. ``after_fork`` runs first in each (a database engine must drop the
    connections it inherited: ``Engine.dispose(close=False)``).
    """
    if workers <= 1:
        server(app, proxy_headers=proxy_headers).run(sockets=[listening])
        return

    def start() -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: serve until uvicorn's own signal handlers stop it, never return
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if after_fork is not None:
                after_fork()
            server(app, proxy_headers=proxy_headers).run(sockets=[listening])
            code = 0
        except BaseException:  # noqa: BLE001 - said, then the process ends
            traceback.print_exc()
        finally:
            os._exit(code)

    started: dict[int, float] = {}
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(workers):
            started[start()] = time.monotonic()
        while started:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            began = started.pop(pid, None)
            if began is None or stopping:
                continue
            log.error("web process %d ended (%s); starting another", pid, _ended(status))
            if time.monotonic() - began < RESTART_PAUSE_S:
                time.sleep(RESTART_PAUSE_S)  # not a loop of crashes as fast as the machine can fork
            if not stopping:
                started[start()] = time.monotonic()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
