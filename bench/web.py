"""The web API under load: N clients following their paintings, uploads of 10 MB photos, and a
worker's claims meanwhile.

The web app (``forger web``) runs in its own process on loopback over a fresh database; a worker
process paints with the quick renderer at 64 px and times each claim; N client threads (default
200) each submit a photo and follow it to the end, half over the event stream and half by
polling its status, again and again, while a few threads upload 10 MB photos. Prints the p50/p95
latency of the status requests, the uploads per second and the worker's claim latency. Runs on
SQLite, or on PostgreSQL with ``--database URL``.

    .venv/bin/python -m bench.web [--clients 200] [--seconds 30] [--uploads 20] [--database URL] [--web-workers N]

The web app runs in ``--web-workers`` processes, by default one per core of this machine.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
import yaml
from PIL import Image

from bot.gallery import Gallery
from bot.rendering import QuickRenderer
from bot.worker import style_of
from bot.options import RenderOptions
from storage import api_keys, jobs, schema
from storage.db import open_engine, session_factory

ROOT = Path(__file__).resolve().parents[1]
UPLOAD_BYTES = 10 * 1024 * 1024


def _photo(side: int = 96) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side * 3 // 4), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def _big_photo(target: int = UPLOAD_BYTES) -> bytes:
    """A JPEG of about ``target`` bytes (noise compresses badly), within the upload cap."""
    rng = np.random.default_rng(7)
    side = 2000
    while True:
        pixels = rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=95)
        if out.tell() >= target * 0.9:
            return out.getvalue()
        side = int(side * (target / out.tell()) ** 0.5) + 16


def _worker(url: str, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Claim and paint until stopped; puts (claim latencies in s, jobs painted)."""
    engine = open_engine(url)
    sessions = session_factory(engine)
    renderer = QuickRenderer(size=64, steps=1)
    gallery = Gallery.load()
    latencies, painted = [], 0
    while not stop.is_set():
        started = time.perf_counter()
        with sessions.begin() as s:
            job = jobs.claim_next(s, worker="bench", lease_s=60, max_attempts=3)
        latencies.append(time.perf_counter() - started)
        if job is None:
            time.sleep(0.05)
            continue
        result = renderer.render(job.content_image, style_of(job, gallery), options=RenderOptions(size=64))
        with sessions.begin() as s:
            jobs.mark_painted(s, job.id, worker="bench", result_image=result, render_s=0.01)
            jobs.mark_posted(s, job.id, reply_ref=None)
        painted += 1
    engine.dispose()
    out.put((latencies, painted))


class Figures:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status_s: list[float] = []
        self.done = 0
        self.streamed = 0
        self.errors: list[str] = []

    def add(self, **values: float | int | str) -> None:
        with self.lock:
            if "status_s" in values:
                self.status_s.append(float(values["status_s"]))
            self.done += int(values.get("done", 0))
            self.streamed += int(values.get("streamed", 0))
            if "error" in values:
                self.errors.append(str(values["error"]))


def _client(base: str, key: str, stream: bool, until: float, figures: Figures) -> None:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    photo = _photo()
    while time.monotonic() < until:
        try:
            answer = http.post(f"{base}api/v1/paintings", files={"photo": ("p.jpg", photo)},
                               data={"painting_name": "scream", "size": "64"}, timeout=60)
            if answer.status_code != 202:
                figures.add(error=f"submit {answer.status_code}: {answer.text[:80]}")
                time.sleep(1)
                continue
            links = answer.json()["links"]
            if stream:
                with http.get(links["events"], stream=True, timeout=120) as events:
                    for line in events.iter_lines(decode_unicode=True):
                        if line.startswith("data:") and json.loads(line[5:])["state"] == "done":
                            figures.add(done=1, streamed=1)
            else:
                while time.monotonic() < until + 30:
                    started = time.perf_counter()
                    state = http.get(links["status"], timeout=60).json()["state"]
                    figures.add(status_s=time.perf_counter() - started)
                    if state == "done":
                        figures.add(done=1)
                        break
                    time.sleep(0.5)
        except requests.RequestException as exc:
            figures.add(error=repr(exc)[:120])


def _client_process(base: str, key: str, count: int, first: int, until_s: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """``count`` clients as threads of one process (its GIL shared by no more than these)."""
    figures = Figures()
    until = time.monotonic() + until_s
    threads = [threading.Thread(target=_client, args=(base, key, (first + n) % 2 == 0, until, figures), daemon=True)
               for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, until + 40 - time.monotonic()))
    out.put((figures.status_s, figures.done, figures.streamed, figures.errors))


def _uploads(base: str, key: str, count: int, threads: int) -> tuple[float, int]:
    """Upload ``count`` 10 MB photos from ``threads`` threads (cancelling each: not painted); (per second, bytes)."""
    big = _big_photo()
    left = list(range(count))
    lock = threading.Lock()

    def run() -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        while True:
            with lock:
                if not left:
                    return
                left.pop()
            answer = http.post(f"{base}api/v1/paintings", files={"photo": ("big.jpg", big)},
                               data={"painting_name": "scream", "size": "64"}, timeout=120)
            assert answer.status_code == 202, answer.text
            http.delete(answer.json()["links"]["status"], timeout=60)

    started = time.perf_counter()
    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count / (time.perf_counter() - started), len(big)


def _idle(base: str, key: str, count: int = 50) -> tuple[float, float]:
    """Median ms of a static file and of a status request, one at a time before the load: what
    the machine gives a request at all (a shared one gives little)."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    status = http.post(f"{base}api/v1/paintings", files={"photo": ("p.jpg", _photo())},
                       data={"painting_name": "scream", "size": "64"}, timeout=60).json()["links"]["status"]
    medians = []
    for url in (f"{base}static/favicon.svg", status):
        times = []
        for _ in range(count):
            started = time.perf_counter()
            http.get(url, timeout=60).raise_for_status()
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times) * 1000)
    return medians[0], medians[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--uploads", type=int, default=20, help="10 MB photos uploaded meanwhile")
    parser.add_argument("--upload-threads", type=int, default=4)
    parser.add_argument("--database", default=None, help="an empty database's URL (default: a fresh SQLite file)")
    parser.add_argument("--web-workers", type=int, default=os.cpu_count() or 1,
                        help="processes serving the web app (web.workers; default: one per core, as the README advises)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        engine = open_engine(url)
        schema.upgrade(engine)
        with session_factory(engine).begin() as s:
            key = api_keys.create(s, "bench", per_day=10_000_000)[1]
        engine.dispose()
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        config["web"].update(requests_per_minute=0, max_upload_bytes=UPLOAD_BYTES + 1024 * 1024, max_size_px=256,
                             workers=args.web_workers)
        config["queue"]["queue_limit"] = 1_000_000
        config_path = Path(folder) / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        port = _free_port()
        base = f"http://127.0.0.1:{port}/"
        server = subprocess.Popen([str(Path(sys.executable).with_name("forger")), "--config", str(config_path), "web",
                                   "--port", str(port)], env={**os.environ, "FORGER_DATABASE_URL": url})
        stop, out = mp.Event(), mp.Queue()
        worker = mp.Process(target=_worker, args=(url, stop, out))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(f"{base}api/v1/gallery", timeout=2)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the web app did not start")
                    time.sleep(0.2)
            idle = _idle(base, key)
            worker.start()
            figures, results = Figures(), mp.Queue()
            per_process = 50
            clients = [mp.Process(target=_client_process,
                                  args=(base, key, min(per_process, args.clients - first), first, args.seconds, results))
                       for first in range(0, args.clients, per_process)]
            started = time.perf_counter()
            for p in clients:
                p.start()
            rate, size = _uploads(base, key, args.uploads, args.upload_threads) if args.uploads else (0.0, 0)
            for _ in clients:
                status_s, done, streamed, errors = results.get(timeout=args.seconds + 120)
                figures.status_s += status_s
                figures.done += done
                figures.streamed += streamed
                figures.errors += errors
            for p in clients:
                p.join()
            elapsed = time.perf_counter() - started
            stop.set()
            claims, painted = out.get(timeout=60)
            worker.join()
        finally:
            stop.set()
            server.terminate()
            server.wait(20)

    def ms(values: list[float], q: int) -> str:
        if len(values) < 2:
            return "-"
        return f"{statistics.quantiles(values, n=100)[q - 1] * 1000:.1f}"

    backend = url.split(":", 1)[0]
    print(f"{backend}, {args.web_workers} web process(es), {args.clients} clients "
          f"({args.clients // 2 + args.clients % 2} on the stream, "
          f"{args.clients // 2} polling every 0.5 s) for {elapsed:.0f} s; {os.cpu_count()} CPUs (shared: rough)")
    print(f"one request at a time, before the load: a static file p50 {idle[0]:.1f} ms, a status p50 {idle[1]:.1f} ms")
    print(f"status requests: {len(figures.status_s)}, p50 {ms(figures.status_s, 50)} ms, "
          f"p95 {ms(figures.status_s, 95)} ms")
    print(f"paintings followed to the end: {figures.done} ({figures.streamed} over the stream); "
          f"the worker painted {painted}")
    if args.uploads:
        print(f"uploads of {size / 1e6:.1f} MB photos: {rate:.2f} per second ({args.upload_threads} at a time)")
    print(f"worker's claims meanwhile: {len(claims)}, p50 {ms(claims, 50)} ms, p95 {ms(claims, 95)} ms, "
          f"max {max(claims) * 1000:.1f} ms")
    if figures.errors:
        print(f"{len(figures.errors)} errors, e.g. {figures.errors[0]}")


if __name__ == "__main__":
    main()
