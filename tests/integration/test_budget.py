"""The X API ledger in the running bot: every call recorded and priced, windows shared between
processes through the database, and the month's budget stopping optional posts first, new work
next and owed replies last. Runs on SQLite and PostgreSQL, against the sandbox X over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Forger
from tests.factories import make_config, on_sandbox
from bot.errors import RateLimited
from bot.rendering import QuickRenderer
from bot.x.sandbox import CREDENTIALS_ENV, SandboxX
from storage import ledger, replies
from storage.models import ApiCall

ROOT = Path(__file__).resolve().parents[2]


def _forger(x: SandboxX, db_url: str, *, monthly_usd: float = 50.0) -> Forger:
    config = make_config(
        x=on_sandbox(x, budget={"monthly_usd": monthly_usd}), database={"url": db_url}, bot={"acknowledge": True},
    )
    return Forger.create(config, CREDENTIALS_ENV, renderer=QuickRenderer(size=64))


@pytest.fixture
def x() -> Iterator[SandboxX]:
    with SandboxX(bot_username="forgerbot") as sandbox:
        yield sandbox


def _mention_reads(x: SandboxX) -> int:
    return sum(1 for m, p in x.requests_log if m == "GET" and p.endswith("/mentions"))


def test_every_call_is_recorded_with_its_price(x: SandboxX, db_url: str, samples: Path) -> None:
    photo = (samples / "coffee.jpg").read_bytes()
    x.post("alice", "@forgerbot", images=[photo, photo])
    x.post("bob", "@forgerbot hello")
    forger = _forger(x, db_url)
    try:
        forger.poll()
        forger.work()
        prices = forger.config.section("x").budget.prices_usd
        with forger.sessions() as s:
            calls = dict(s.execute(select(ApiCall.endpoint, func.count()).group_by(ApiCall.endpoint)).all())
            spent = ledger.spent(s)
            windows = {w.endpoint: w for w in ledger.windows(s)}
    finally:
        forger.close()
    assert calls["GET /2/users/:id/mentions"] == 1
    assert calls["POST /2/tweets"] == 3  # the how-to, the acknowledgement, the result
    # two mentions read, three replies, one upload; lookups of the bot's own replies read nothing
    assert spent == pytest.approx(2 * prices.mention_read + 3 * prices.reply + prices.media_upload)
    assert windows["POST /2/tweets"].remaining == windows["POST /2/tweets"].limit - 3


def test_a_spent_window_is_known_to_every_process(db_url: str) -> None:
    with SandboxX(bot_username="forgerbot", rate_limits={"GET /2/users/:id/mentions": 1}) as x:
        first, second = _forger(x, db_url), _forger(x, db_url)  # two processes of one bot
        try:
            first.poll()
            asked = _mention_reads(x)
            with pytest.raises(RateLimited, match="rate-limit window used up"):
                second.poll()
        finally:
            first.close()
            second.close()
        assert _mention_reads(x) == asked  # the second did not even ask


def test_the_budget_stops_optional_posts_then_new_work_then_everything(x: SandboxX, db_url: str) -> None:
    forger = _forger(x, db_url, monthly_usd=1.0)  # optional stops at 80 %, new work at 95 %
    try:
        with forger.sessions.begin() as s:
            ledger.record_call(s, "x", "earlier", status=200, cost_usd=0.85)
        bare = x.post("carol", "@forgerbot what is this?")
        forger.poll()  # new work is still allowed at 85 %: the how-to is owed and sent
        with forger.sessions.begin() as s:
            [howto] = replies.for_post(s, "x", bare)
            assert howto.reply_ref is not None
            ack = replies.owe(s, platform="x", in_reply_to_ref=bare, kind="ack", text="You're #1", optional=True)
        forger.deliver()  # the optional one is not sent, not even asked
        with forger.sessions() as s:
            assert s.get_one(type(ack), ack.id).reply_ref is None

        with forger.sessions.begin() as s:
            ledger.record_call(s, "x", "earlier", status=200, cost_usd=0.12)  # 97 %+
        mentions_asked = _mention_reads(x)
        with pytest.raises(RateLimited, match="taking no new work"):
            forger.poll()
        assert _mention_reads(x) == mentions_asked

        with forger.sessions.begin() as s:
            owed = replies.owe(s, platform="x", in_reply_to_ref=bare, kind="failure", text="Sorry!")
        forger.deliver()  # owed replies still go out below 100 %
        with forger.sessions() as s:
            assert s.get_one(type(owed), owed.id).reply_ref is not None
            assert ledger.spent(s) >= 1.0  # that reply's price took it over
        with forger.sessions.begin() as s:
            last = replies.owe(s, platform="x", in_reply_to_ref=bare, kind="failure", text="Sorry again!")
        forger.deliver()
        with forger.sessions() as s:
            assert s.get_one(type(last), last.id).reply_ref is None
    finally:
        forger.close()


def test_a_usage_cap_met_by_one_process_stops_the_others(x: SandboxX, db_url: str) -> None:
    ask = x.post("alice", "@forgerbot what is this?")
    first, second = _forger(x, db_url), _forger(x, db_url)
    try:
        x.cap("write")
        first.poll()  # the how-to is owed, and posting it meets X's usage cap
        posts = sum(1 for m, p in x.requests_log if (m, p) == ("POST", "/2/tweets"))
        with pytest.raises(RateLimited, match="usage cap"):
            second.platform.reply(ask, "hello")
        assert sum(1 for m, p in x.requests_log if (m, p) == ("POST", "/2/tweets")) == posts  # not asked
        with second.sessions() as s:
            [window] = [w for w in ledger.windows(s) if w.endpoint == "POST /2/tweets"]
            assert window.capped_until is not None
    finally:
        first.close()
        second.close()
