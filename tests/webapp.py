"""The web app on a real uvicorn server on a loopback port, for the web tests (not a test module)."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config
from bot.web import create_app
from bot.web.serve import listen, server
from tests.factories import make_config

ROOT = Path(__file__).resolve().parents[1]

WEB = dict(max_upload_bytes=512 * 1024, max_size_px=256, default_size_px=128, anonymous_per_day=2,
           requests_per_minute=0, trust_proxy=False, workers=1)


def web_config(**changes: object) -> Config:
    """The test configuration with a web section for tests (small caps), ``changes`` to it applied."""
    return make_config(web={**WEB, **changes})


@contextmanager
def serving(config: Config, sessions: sessionmaker[Session], reads: sessionmaker[Session] | None = None
            ) -> Iterator[str]:
    """``create_app`` served by uvicorn (``bot.web.serve``) in a thread; yields its base URL (ending in /)."""
    with serving_app(create_app(config, sessions, reads=reads)) as base:
        yield base


@contextmanager
def serving_app(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port; yields its base URL."""
    listening = listen("127.0.0.1", 0)
    port = listening.getsockname()[1]
    uvicorn_server = server(app)
    thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        uvicorn_server.should_exit = True
        thread.join(10)
        listening.close()


def png(size: tuple[int, int] = (200, 150), colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header says ``width`` × ``height`` pixels (2.5 gigapixels) in a few hundred bytes:
    decoding it would take gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows; the rest would follow
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
