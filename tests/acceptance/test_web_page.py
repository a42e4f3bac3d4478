"""The public page: its HTML, its content policy, thumbnails; then a real Chromium paints a photo
with a real worker process (``forger work --renderer quick``) and downloads the picture."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from bot.web.public import thumbnails
from storage import schema
from storage.db import open_engine, session_factory
from tests.webapp import ROOT, serving, web_config

CHROMIUM = Path("/usr/bin/chromium")
SCREENS = Path("/tmp/forger-web-screens")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The web app on loopback over a fresh SQLite file: (base URL, database URL)."""
    url = f"sqlite:///{tmp_path / 'forger.sqlite3'}"
    engine = open_engine(url)
    schema.upgrade(engine)
    try:
        with serving(web_config(), session_factory(engine), session_factory(engine, read_only=True)) as base:
            yield base, url
    finally:
        engine.dispose()


def test_the_page_offers_photo_camera_gallery_options_and_states_retention(site: tuple[str, str]) -> None:
    base, _ = site
    page = requests.get(base, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert 'type="file" accept="image/*" capture="environment"' in html  # a phone's camera
    assert 'id="photo" name="photo" type="file" accept="image/*"' in html
    assert 'src="/api/v1/gallery/starry-night/thumbnail"' in html
    assert "The Starry Night" in html and "Vincent van Gogh, 1889" in html
    assert "deleted after 7 days" in html
    assert re.search(r'<option value="256">256 px</option>', html) and '<option value="512"' not in html  # the cap
    # Nothing external and nothing inline: every script and style sheet is this server's.
    assert re.findall(r"<script[^>]*>", html) == [
        f'<script src="/static/web.js" defer nonce="{_nonce(page)}">']
    assert "style=" not in html and "http" not in re.sub(r'href="/api/v1/openapi.json"', "", html).split("<footer>")[0]
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "http" not in policy
    script = requests.get(f"{base}static/web.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]


def _nonce(page: requests.Response) -> str:
    found = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"])
    assert found
    return found[1]


def test_a_share_page_carries_its_token(site: tuple[str, str]) -> None:
    base, _ = site
    html = requests.get(f"{base}p/abc123", timeout=10).text
    assert 'data-token="abc123"' in html and "deleted after 7 days" in html
    escaped = requests.get(f"{base}p/%22%3E%3Cb%3E", timeout=10).text
    assert '"><b>' not in escaped  # escaped by the template


def test_thumbnails_are_made_once(site: tuple[str, str]) -> None:
    base, _ = site
    thumbnails._made.cache_clear()
    first = requests.get(f"{base}api/v1/gallery/the-scream/thumbnail", timeout=10)
    second = requests.get(f"{base}api/v1/gallery/scream/thumbnail", timeout=10)
    assert first.content == second.content
    info = thumbnails._made.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    with Image.open(io.BytesIO(first.content)) as image:
        assert max(image.size) == thumbnails.SIDE


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: in CI the browser test must run")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture
def worker(site: tuple[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process on the site's database, with the quick renderer (its log in tmp_path)."""
    _, url = site
    forger = Path(sys.executable).with_name("forger")
    with open(tmp_path / "worker.log", "wb") as log:
        process = subprocess.Popen([str(forger), "work", "--renderer", "quick"], cwd=ROOT,
                                   env={**os.environ, "FORGER_DATABASE_URL": url}, stdout=log, stderr=log)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.browser
def test_a_photo_painted_in_a_real_browser(site: tuple[str, str], worker: subprocess.Popen[bytes],
                                           samples: Path, paintings: Path, tmp_path: Path) -> None:
    _need_chromium()
    from playwright.sync_api import expect, sync_playwright

    base, _ = site
    SCREENS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.set_default_timeout(15_000)
            problems: list[str] = []  # a script error, or anything the content policy blocked
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(base)
            page.wait_for_function("""() => Array.from(document.querySelectorAll('.gallery img[loading]'))
                .every(i => i.complete && i.naturalWidth > 0)""")
            page.screenshot(path=str(SCREENS / "index-1280.png"), full_page=True)

            # Nothing chosen: the page says what is missing, and sends nothing.
            page.click("#submit")
            expect(page.locator("#form-error")).to_have_text("Choose a photo first (or take one).")

            page.set_input_files("#photo", str(samples / "coffee.jpg"))
            page.set_input_files("#own-painting", str(paintings / "shipwreck.jpg"))
            assert page.is_checked("#own-choice")
            page.select_option("select[name=size]", "128")
            page.click("#submit")
            expect(page).to_have_url(re.compile(r"/p/[A-Za-z0-9_-]{32}$"))
            expect(page.locator("#follow")).to_be_visible()
            page.screenshot(path=str(SCREENS / "following-1280.png"), full_page=True)
            # The worker process paints it; the stream moves the bar to 100%.
            expect(page.locator("#pct")).to_have_text("100%", timeout=60_000)
            assert page.eval_on_selector("#bar", "bar => bar.value") == 100
            expect(page.locator("#status-line")).to_have_text("Painted.")
            page.wait_for_function("() => document.getElementById('result-view').naturalWidth > 0")
            shown = page.eval_on_selector("#result-view", "i => [i.naturalWidth, i.naturalHeight]")
            assert max(shown) == 128
            share = page.input_value("#share")
            assert share == page.url
            page.screenshot(path=str(SCREENS / "done-1280.png"), full_page=True)

            with page.expect_download() as download:
                page.click("#download")
            saved = tmp_path / "download.jpg"
            download.value.save_as(saved)
            with Image.open(saved) as picture:
                assert picture.format == "JPEG" and max(picture.size) == 128

            # The share link, on a phone's width: readable, nothing wider than the screen.
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            phone.goto(share)
            expect(phone.locator("#status-line")).to_have_text("Painted.")
            phone.wait_for_function("""() => ['photo-view', 'result-view']
                .every(id => document.getElementById(id).naturalWidth > 0)""")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            phone.screenshot(path=str(SCREENS / "done-390.png"), full_page=True)
            phone.goto(base)
            phone.wait_for_function("""() => Array.from(document.querySelectorAll('.gallery img[loading]'))
                .every(i => i.complete && i.naturalWidth > 0)""")
            phone.screenshot(path=str(SCREENS / "index-390.png"), full_page=True)
            wide = phone.evaluate("""() => Array.from(document.querySelectorAll('body *'))
                .filter(e => e.getBoundingClientRect().right > 390).map(e => e.tagName + '#' + e.id + '.' + e.className)""")
            assert wide == []
            assert problems == []
        finally:
            browser.close()


def test_forger_web_demo_serves_the_page_and_paints(tmp_path: Path, samples: Path) -> None:
    forger = Path(sys.executable).with_name("forger")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key not in ("FORGER_DATABASE_URL", "DATABASE_URL")}
    process = subprocess.Popen([str(forger), "--config", str(ROOT / "config.yaml"), "web", "--demo", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert f"serving on http://127.0.0.1:{port}/" in lines[1], lines
        assert list(tmp_path.glob("demo-output/web-*/forger.sqlite3"))
        base = f"http://127.0.0.1:{port}/"
        assert "deleted after 7 days" in requests.get(base, timeout=10).text
        answer = requests.post(f"{base}api/v1/paintings", files={"photo": ("c.jpg", (samples / "coffee.jpg").read_bytes())},
                               data={"painting_name": "starry night", "size": "64"}, timeout=30)
        assert answer.status_code == 202, answer.text
        events = requests.get(answer.json()["links"]["events"], timeout=60).text  # ends when the job does
        assert '"state":"done"' in events
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
