"""Safe photo downloads from the sandbox X's media urls, over real HTTP: every limit, every lie."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from bot.config import parse_config
from bot.errors import ConfigError, MediaError, PhotoTooSmall
from bot.media import Downloader, Photo, check_photo
from bot.x.sandbox import SandboxX
from tests.integration.test_sandbox import encoded_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def x() -> Iterator[SandboxX]:
    with SandboxX() as sandbox:
        yield sandbox


class OnHosts:
    """A downloader as a platform uses it: fetching only from that platform's media hosts."""

    def __init__(self, downloader: Downloader, hosts: list[str]) -> None:
        self.downloader, self.hosts = downloader, hosts

    def fetch(self, url: str, **kwargs: Any) -> Photo:
        return self.downloader.fetch(url, hosts=self.hosts, **kwargs)


def downloader(x: SandboxX, hosts: list[str] | None = None, **kwargs: object) -> OnHosts:
    settings: dict[str, object] = dict(max_bytes=1_000_000, time_limit_s=2.0, max_pixels=10_000_000, min_side=16)
    return OnHosts(Downloader(**{**settings, **kwargs}), hosts or [x.media_host])  # type: ignore[arg-type]


def photo_url(x: SandboxX, data: bytes) -> tuple[str, str]:
    tweet = x.post("alice", "@forgerbot", images=[data])
    [key] = x.tweets_by("alice")[-1].media_keys
    assert x.tweets_by("alice")[-1].id == tweet
    return key, x.media(key).url


def test_a_photo_from_the_media_host_is_fetched_and_checked(x: SandboxX) -> None:
    data = encoded_image(40, 30, "PNG", seed=1)
    _, url = photo_url(x, data)

    photo = downloader(x).fetch(url)

    assert (photo.data, photo.content_type, photo.width, photo.height) == (data, "image/png", 40, 30)


def test_other_hosts_are_refused_before_any_request(x: SandboxX) -> None:
    _, url = photo_url(x, encoded_image(seed=2))

    with pytest.raises(MediaError, match="not one of the platform's media hosts") as caught:
        downloader(x, hosts=["pbs.twimg.com"]).fetch(url)
    with pytest.raises(MediaError, match="not at an https url"):
        Downloader().fetch("http://pbs.twimg.com/media/x.jpg", hosts=["pbs.twimg.com"])

    assert not caught.value.transient and x.requests_log == []


def test_more_bytes_than_the_cap_are_refused(x: SandboxX) -> None:
    data = encoded_image(200, 200, "PNG", seed=3)  # noise: about 120 KB
    _, url = photo_url(x, data)

    with pytest.raises(MediaError, match="is 120,365 bytes, more than the 50,000 allowed") as caught:
        downloader(x, max_bytes=50_000).fetch(url)

    assert not caught.value.transient


def test_a_slow_media_server_hits_the_time_limit_and_may_be_tried_again(x: SandboxX) -> None:
    _, url = photo_url(x, encoded_image(seed=4))
    x.slow("media", 1.0)

    with pytest.raises(MediaError, match="longer than 0.2 s") as caught:
        downloader(x, time_limit_s=0.2).fetch(url)

    assert caught.value.transient


def test_a_server_dripping_bytes_cannot_hold_a_fetch_past_its_time_limit() -> None:
    # A server that sends a byte now and then: each byte restarts the read timeout, so only the
    # fetch's own deadline ends it (a stalled CDN connection would otherwise hold the poller).
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def drip() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n\xff\xd8")
            give_up = time.monotonic() + 10  # so that a fetch without a deadline fails, not hangs
            while not done.wait(0.1) and time.monotonic() < give_up:
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(MediaError, match="longer than 0.5 s") as caught:
            Downloader(time_limit_s=0.5).fetch(f"http://127.0.0.1:{server.getsockname()[1]}/p.jpg", hosts=["127.0.0.1"])
    finally:
        done.set()
        server.close()

    assert caught.value.transient and time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("served", "content_type", "message"),
    [
        (b"<html>a login page</html>", "image/jpeg", "not a JPEG, PNG, WebP or GIF"),
        (encoded_image(32, 32, "PNG", seed=5), "image/jpeg", "sent as image/jpeg but is image/png"),
        (encoded_image(32, 32, "JPEG", seed=6)[:200], "image/jpeg", "damaged JPEG"),
    ],
    ids=["html", "png-as-jpeg", "truncated"],
)
def test_bytes_that_are_not_the_image_claimed_are_refused(
    x: SandboxX, served: bytes, content_type: str, message: str
) -> None:
    key, url = photo_url(x, encoded_image(seed=7))
    x.replace_media(key, served, content_type)

    with pytest.raises(MediaError, match=message) as caught:
        downloader(x).fetch(url)

    assert not caught.value.transient


def test_a_decompression_bomb_is_refused_from_its_header(x: SandboxX) -> None:
    buffer = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buffer, "PNG")  # 25 Mpx in a few kilobytes
    key, url = photo_url(x, encoded_image(seed=8))
    x.replace_media(key, buffer.getvalue(), "image/png")

    with pytest.raises(MediaError, match="5000×5000 pixels, more than the 10,000,000 allowed"):
        downloader(x).fetch(url)


def test_a_photo_too_small_to_paint_says_so(x: SandboxX) -> None:
    _, url = photo_url(x, encoded_image(12, 40, seed=9))

    with pytest.raises(PhotoTooSmall) as caught:
        downloader(x, min_side=16).fetch(url)

    assert (caught.value.width, caught.value.height, caught.value.min_side) == (12, 40, 16)


def test_missing_media_and_server_errors(x: SandboxX) -> None:
    key, url = photo_url(x, encoded_image(seed=10))

    with pytest.raises(MediaError, match="HTTP 404") as missing:
        downloader(x).fetch(url.replace(key, "3_1"))

    assert not missing.value.transient


def test_check_photo_accepts_the_gallery_formats() -> None:
    for image_format, content_type in [("JPEG", "image/jpg"), ("PNG", "image/png"), ("WEBP", "image/webp")]:
        data = encoded_image(20, 20, image_format, seed=11)
        assert check_photo(data, claimed=content_type, max_pixels=1000, min_side=1).width == 20


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["x"].update(media_hosts=[]), "x.media_hosts must be a list of host names"),
        (lambda r: r["x"].update(media_hosts="pbs.twimg.com"), "x.media_hosts must be a list of strings"),
        (lambda r: r["x"].update(media_hosts=["https://pbs.twimg.com/"]), "x.media_hosts must be a list of host names"),
        (lambda r: r["bot"].update(acknowledge="yes"), "bot.acknowledge must be true or false, got: 'yes'"),
        (lambda r: r["x"].update(upload_chunk_bytes=10), "x.upload_chunk_bytes must be a number from 65536"),
        (lambda r: r["gallery"].pop("extra_dirs"), "missing key gallery.extra_dirs"),
    ],
)
def test_media_settings_errors_name_the_key(change: Any, message: str) -> None:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    change(raw)
    with pytest.raises(ConfigError, match="^config.yaml: " + re.escape(message)):
        parse_config(raw, source="config.yaml")
