"""A flood of mentions against the bot, as issue #21 measured it: what it costs and who is answered.

One user sends ``--flood`` mentions with a photo in ``--flood-s`` seconds; ``--after-s`` later five
other people each ask for a picture. The bot polls every ``--interval`` seconds (sooner while
pages come full, where the code has ``bot.poller.Pace``) for ``--until`` seconds. Everything runs
on a ManualClock against the sandbox X over real HTTP (its 800-mention reach, its windows) with
the X ledger on a fresh SQLite database, so minutes of flood take seconds. Prints: mentions
posted and served, lost (never recorded), billed reads per mention posted, photos downloaded,
the month's budget spent and whether new work is still taken, and the five's answers.

    .venv/bin/python -m bench.flood [--flood 1000] [--interval 10]

It runs on older code too (no Pace: a fixed interval), to compare.
"""

from __future__ import annotations

import argparse
import inspect
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from bot import poller
from bot.gallery import Gallery
from bot.media import Downloader
from bot.x.client import MENTIONS, XClient
from bot.x.ledger import Ledger
from bot.x.platform import XPlatform
from bot.x.sandbox import ManualClock, SandboxX
from bot.x.settings import XCredentials
from storage import ledger, schema
from storage.admission import Limits
from storage.db import open_engine, session_factory
from storage.ledger import Go, Need
from storage.models import ApiCall, Post
from tests.factories import make_config

ORDINARY = ("alice", "bob", "carol", "dave", "erin")


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def run(flood: int, flood_s: float, after_s: float, interval: float, until: float, overlap: float) -> dict[str, object]:
    clock = ManualClock()
    budget = make_config().section("x").budget
    with tempfile.TemporaryDirectory() as folder, SandboxX(clock=clock) as x:
        engine = open_engine(f"sqlite:///{Path(folder) / 'flood.sqlite3'}", create=True)
        schema.upgrade(engine)
        sessions = session_factory(engine)
        told: list[str] = []
        book = Ledger(sessions, budget, platform="x", alert=told.append, clock=lambda: datetime.fromtimestamp(clock(), UTC))
        client = XClient(XCredentials.sandbox(), base_url=x.base_url, timeout_s=10.0, clock=clock, ledger=book)
        platform = XPlatform(client, handle="forgerbot", media_hosts=[x.media_host])
        policy = poller.PollPolicy(gallery=Gallery.load(), downloader=Downloader(min_side=16), overlap_s=overlap)
        pace = poller.Pace(interval, 15.0, settle_s=overlap) if hasattr(poller, "Pace") else None
        takes_busy = "busy" in inspect.signature(poller.poll).parameters
        photo, posted = _photo(), []
        events = [(1 + n * flood_s / flood, "mallory") for n in range(flood)]
        events += [(flood_s + after_s + n, who) for n, who in enumerate(ORDINARY)]
        start, served, polls, refused_reads = clock(), 0, 0, 0
        next_poll = start
        while True:
            next_event = start + events[0][0] if events else float("inf")
            moment = min(next_poll, next_event)
            if moment > start + until:
                break
            clock.advance(max(0.0, moment - clock()))
            if next_event <= next_poll:
                who = events.pop(0)[1]
                posted.append(x.post(who, "@forgerbot paint this", images=[photo]))
                continue
            kwargs = {"busy": pace.busy(clock())} if pace is not None and takes_busy else {}
            try:
                report = poller.poll(sessions, platform, limits=Limits(5, 500), policy=policy, clock=clock, **kwargs)
                served += getattr(report, "read", 0)
            except Exception:  # noqa: BLE001 - a refused read (the budget's new-work stop, a window)
                refused_reads += 1
                report = poller.PollReport()
            polls += 1
            next_poll = clock() + (pace.after(report, clock()) if pace is not None else interval)
        now = datetime.fromtimestamp(clock(), UTC)
        with sessions() as s:
            recorded = set(s.scalars(select(Post.post_ref)))
            mention_usd = float(s.scalar(select(func.coalesce(func.sum(ApiCall.cost_usd), 0.0))
                                         .where(ApiCall.endpoint == MENTIONS)) or 0.0)
            spent = ledger.spent(s, platform="x", now=now)
            open_for_work = isinstance(ledger.decide(s, "x", MENTIONS, Need.NEW_WORK, book.budget, now=now), Go)
        engine.dispose()
        downloads = sum(1 for m, p in x.requests_log if m == "GET" and p.startswith("/media/"))
        return {
            "posted": len(posted), "polls": polls, "reads refused": refused_reads,
            "lost": len(set(posted) - recorded),
            "five recorded": sum(1 for p in posted[-5:] if p in recorded),
            "billed reads per mention": round(mention_usd / budget.prices_usd.mention_read / len(posted), 3),
            "downloads": downloads,
            "spent": f"${spent:.2f} of ${budget.monthly_usd:.2f} ({spent / budget.monthly_usd:.0%})",
            "new work still taken": open_for_work,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--flood-s", type=float, default=20.0)
    parser.add_argument("--after-s", type=float, default=120.0, help="the five ask this long after the flood")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--until", type=float, default=200.0)
    parser.add_argument("--overlap", type=float, default=120.0)
    args = parser.parse_args()
    found = run(args.flood, args.flood_s, args.after_s, args.interval, args.until, args.overlap)
    print(f"flood of {args.flood} in {args.flood_s:g} s, polling every {args.interval:g} s:")
    for key, value in found.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
