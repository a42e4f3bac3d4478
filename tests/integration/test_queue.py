"""The queue's contract, run on SQLite and on PostgreSQL: lifecycle, leases, admission, ledger."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import cursors, jobs, ledger, posts, replies, schema, users
from storage.admission import Limits, Refused, admit
from storage.db import open_engine, session_factory
from storage.errors import IllegalTransition, LeaseLost
from storage.ledger import Budget, Go, Need, Stop, Wait
from storage.models import JobState, Outcome
from storage.schema import SchemaOutOfDate

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEASE = 60.0
Sessions = sessionmaker[Session]
P = "memory"  # the platform the rows are of


def _queue(session: Session, post_ref: str, author: str = "alice", priority: int = 0) -> int:
    posts.record(session, platform=P, post_ref=post_ref, author_ref=f"id-{author}", author_username=author,
                 text="@bot", outcome=Outcome.QUEUED)
    user = users.seen(session, P, f"id-{author}", author)
    job = jobs.enqueue(
        session, platform=P, post_ref=post_ref, user_id=user.id, author_username=author,
        content_image=b"picture-" + post_ref.encode(), style_image=b"painting", priority=priority,
    )
    return job.id


def _claim(sessions: Sessions, worker: str = "w1", now: datetime = T0, max_attempts: int = 3) -> jobs.ClaimedJob | None:
    with sessions.begin() as s:
        return jobs.claim_next(s, worker=worker, lease_s=LEASE, max_attempts=max_attempts, now=now)


# -- lifecycle ------------------------------------------------------------------------------------


def test_claims_by_priority_then_oldest_each_once(sessions: Sessions) -> None:
    with sessions.begin() as s:
        old, new, vip = _queue(s, "100"), _queue(s, "101"), _queue(s, "102", "vip", priority=5)
    claimed = [_claim(sessions, f"w{n}") for n in range(4)]
    assert [c.id if c else None for c in claimed] == [vip, old, new, None]
    first = claimed[0]
    assert first is not None and first.attempts == 1 and first.lease_owner == "w0"
    with sessions() as s:
        job = jobs.get(s, vip)
        assert job.state is JobState.RENDERING and job.lease_expires_at == T0 + timedelta(seconds=LEASE)


def test_a_post_is_queued_once(sessions: Sessions) -> None:
    with sessions.begin() as s:
        _queue(s, "100")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        jobs.enqueue(s, platform=P, post_ref="100", author_username="x", content_image=b"", style_image=b"")
    with sessions() as s:
        assert jobs.counts(s)[JobState.QUEUED] == 1


def test_a_job_needs_no_post_but_one_with_a_post_needs_its_row(sessions: Sessions) -> None:
    with sessions.begin() as s:
        upload = jobs.enqueue(s, content_image=b"photo", style_image=b"painting").id
        jobs.enqueue(s, content_image=b"photo", style_image=b"painting")  # two with no origin are fine
        assert [e.reason for e in jobs.history(s, upload)] == ["queued"]
    with pytest.raises(IntegrityError), sessions.begin() as s:
        jobs.enqueue(s, platform=P, post_ref="never-seen", content_image=b"", style_image=b"")
    with pytest.raises(ValueError, match="a platform and a post, or neither"), sessions.begin() as s:
        jobs.enqueue(s, platform=P, content_image=b"", style_image=b"")
    claimed = _claim(sessions)
    assert claimed is not None and (claimed.id, claimed.platform, claimed.post_ref) == (upload, None, None)


def test_a_worker_of_one_platform_takes_its_jobs_and_those_from_no_post(sessions: Sessions) -> None:
    with sessions.begin() as s:
        here = _queue(s, "100")
        posts.record(s, platform="elsewhere", post_ref="100", author_ref="1", author_username="b", text="",
                     outcome=Outcome.QUEUED)
        s.flush()  # the job's foreign key needs the post's row first
        there = jobs.enqueue(s, platform="elsewhere", post_ref="100", content_image=b"", style_image=b"").id
        upload = jobs.enqueue(s, content_image=b"", style_image=b"").id

    def claim() -> int | None:
        with sessions.begin() as s:
            job = jobs.claim_next(s, worker="w", lease_s=LEASE, max_attempts=3, platform=P, now=T0)
            return job.id if job else None

    assert [claim(), claim(), claim()] == [here, upload, None]
    anyone = _claim(sessions)  # a worker of no platform in particular
    assert anyone is not None and anyone.id == there


def test_a_jobs_history_reads_back_in_order(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    _claim(sessions)
    with sessions.begin() as s:
        jobs.heartbeat(s, job_id, worker="w1", lease_s=LEASE, iteration=5, total=10)
        jobs.mark_painted(s, job_id, worker="w1", result_image=b"jpeg", render_s=12.5)
        jobs.mark_posted(s, job_id, reply_ref="900")
    with sessions() as s:
        job = jobs.get(s, job_id)
        assert (job.state, job.reply_ref, job.result_image, job.render_s) == (JobState.REPLIED, "900", b"jpeg", 12.5)
        assert job.lease_owner is None and job.finished_at is not None
        events = jobs.history(s, job_id)
        assert [(e.from_state, e.to_state) for e in events] == [
            (None, JobState.QUEUED),
            (JobState.QUEUED, JobState.RENDERING),
            (JobState.RENDERING, JobState.UPLOADING),
            (JobState.UPLOADING, JobState.REPLIED),
        ]
        assert events[1].reason == "claimed by w1" and events[1].worker == "w1"
        assert events[2].reason == "rendered in 12.5 s"
        assert all(a.at <= b.at for a, b in zip(events, events[1:]))


def test_illegal_transitions_raise(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    with pytest.raises(IllegalTransition, match="cannot go from queued to uploading"), sessions.begin() as s:
        jobs._move(s, jobs.get(s, job_id), JobState.UPLOADING, "skipping the render")
    _claim(sessions)
    with sessions.begin() as s:
        jobs.mark_failed(s, job_id, worker="w1", error="not an image")
    with pytest.raises(IllegalTransition, match="cannot go from failed to cancelled"), sessions.begin() as s:
        jobs.cancel(s, job_id, reason="admin")


# -- leases -----------------------------------------------------------------------------------------


def test_a_lapsed_lease_is_claimed_again_and_the_old_worker_is_stopped(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    assert _claim(sessions, "dead") is not None
    assert _claim(sessions, "w2", now=T0 + timedelta(seconds=LEASE - 1)) is None  # still held
    again = _claim(sessions, "w2", now=T0 + timedelta(seconds=LEASE + 1))
    assert again is not None and again.id == job_id and again.attempts == 2
    with pytest.raises(LeaseLost, match="no longer held by dead"), sessions.begin() as s:
        jobs.heartbeat(s, job_id, worker="dead", lease_s=LEASE)
    with sessions() as s:
        reasons = [e.reason for e in jobs.history(s, job_id)]
    assert "lease of dead lapsed (worker gone?)" in reasons


def test_heartbeats_keep_the_lease(sessions: Sessions) -> None:
    with sessions.begin() as s:
        _queue(s, "100")
    job = _claim(sessions)
    assert job is not None
    with sessions.begin() as s:
        jobs.heartbeat(s, job.id, worker="w1", lease_s=LEASE, now=T0 + timedelta(seconds=50))
    assert _claim(sessions, "w2", now=T0 + timedelta(seconds=LEASE + 1)) is None
    with sessions.begin() as s:  # painted: the result waits in the outbox, holding no lease
        jobs.mark_painted(s, job.id, worker="w1", result_image=b"jpeg", render_s=1.0)
    with sessions.begin() as s:
        assert jobs.sweep(s, max_attempts=1, now=T0 + timedelta(days=1)) == []
        assert jobs.get(s, job.id).state is JobState.UPLOADING and jobs.get(s, job.id).lease_owner is None
    with pytest.raises(LeaseLost), sessions.begin() as s:
        jobs.heartbeat(s, job.id, worker="w1", lease_s=LEASE)


def test_after_max_attempts_a_lapsed_job_fails_with_its_last_error(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    now = T0
    for attempt in range(2):
        job = _claim(sessions, f"w{attempt}", now=now, max_attempts=2)
        assert job is not None and job.attempts == attempt + 1
        now += timedelta(seconds=LEASE + 1)
    assert _claim(sessions, "w9", now=now, max_attempts=2) is None
    with sessions() as s:
        job_row = jobs.get(s, job_id)
        assert job_row.state is JobState.FAILED
        assert job_row.error == "gave up after 2 attempts; last: lease of w1 lapsed (worker gone?)"


def test_release_requeues_until_out_of_attempts(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    _claim(sessions, max_attempts=2)
    with sessions.begin() as s:
        assert jobs.release(s, job_id, worker="w1", error="X 503", max_attempts=2) is True
    _claim(sessions, max_attempts=2)
    with sessions.begin() as s:
        assert jobs.release(s, job_id, worker="w1", error="X 503", max_attempts=2) is False
    with sessions() as s:
        assert jobs.get(s, job_id).state is JobState.FAILED


def test_cancel_stops_the_worker_and_retry_starts_afresh(sessions: Sessions) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    _claim(sessions)
    with sessions.begin() as s:
        jobs.cancel(s, job_id, reason="admin: spam")
    with pytest.raises(LeaseLost), sessions.begin() as s:
        jobs.heartbeat(s, job_id, worker="w1", lease_s=LEASE)
    with sessions.begin() as s:
        _queue(s, "101")
    _claim(sessions)
    with sessions.begin() as s:
        jobs.mark_failed(s, 2, worker="w1", error="boom")
        jobs.retry(s, 2, reason="admin retry")
    with sessions() as s:
        job = jobs.get(s, 2)
        assert (job.state, job.attempts, job.error) == (JobState.QUEUED, 0, None)


def test_position_progress_and_eta(sessions: Sessions) -> None:
    with sessions.begin() as s:
        ids = [_queue(s, str(100 + n)) for n in range(4)]
        assert jobs.eta_s(s, ids[3]) is None  # no render measured yet
    done = _claim(sessions)
    assert done is not None
    with sessions.begin() as s:
        jobs.mark_painted(s, done.id, worker="w1", result_image=b"", render_s=20.0)
        jobs.mark_posted(s, done.id, reply_ref="1")
    working = _claim(sessions)
    assert working is not None
    with sessions.begin() as s:
        jobs.heartbeat(s, working.id, worker="w1", lease_s=LEASE, iteration=30, total=100)
    with sessions() as s:
        assert (jobs.get(s, working.id).progress_iteration, jobs.get(s, working.id).progress_total) == (30, 100)
        assert [jobs.position(s, i) for i in ids] == [None, None, 1, 2]
        assert jobs.eta_s(s, ids[3]) == 40.0
        assert jobs.eta_s(s, ids[3], workers=2) == 30.0
        assert jobs.waiting(s) == 3


# -- admission ---------------------------------------------------------------------------------------


LIMITS = Limits(per_user_per_day=2, queue_limit=3)


def _admit(session: Session, author: str, now: datetime = T0) -> Refused | None:
    return admit(session, platform=P, user_ref=f"id-{author}", username=author, limits=LIMITS, now=now).refused


def test_per_user_quota_counts_a_rolling_day(sessions: Sessions) -> None:
    with sessions.begin() as s:
        _queue(s, "100")
        _queue(s, "101")
        s.execute(text("UPDATE jobs SET created_at = :t"), {"t": T0 - timedelta(hours=23)})
    with sessions.begin() as s:
        assert _admit(s, "alice") is Refused.OVER_QUOTA
        assert _admit(s, "alice", now=T0 + timedelta(hours=2)) is None  # a day after the first
        assert _admit(s, "bob") is None


def test_queue_limit_bans_and_priority(sessions: Sessions) -> None:
    with sessions.begin() as s:
        for n, author in enumerate(["a", "b", "c"]):
            _queue(s, str(100 + n), author)
        assert _admit(s, "dave") is Refused.QUEUE_FULL
        vip = users.seen(s, P, "id-vip", "vip")
        users.set_priority(s, vip, 3)
        decision = admit(s, platform=P, user_ref="id-vip", username="vip", limits=LIMITS, now=T0)
        assert decision.admitted and decision.priority == 3 and decision.user_id == vip.id
        users.ban(s, vip, "spam")
        banned = admit(s, platform=P, user_ref="id-vip", username="vip", limits=LIMITS, now=T0)
        assert (banned.refused, banned.detail) == (Refused.BANNED, "spam")
        assert users.by_name(s, "@VIP") is vip


def test_positions_follow_the_claim_order_and_leave_out_jobs_held_back(sessions: Sessions) -> None:
    with sessions.begin() as s:
        first, held, vip, last = (_queue(s, str(n)) for n in (100, 101, 102, 103))
        jobs.get(s, vip).priority = 5
        jobs.get(s, held).not_before = T0 + timedelta(hours=1)  # X's reset, or a backoff
    with sessions() as s:
        assert jobs.positions(s, now=T0) == {vip: 1, first: 2, last: 3}
        assert [jobs.position(s, job_id, now=T0) for job_id in (first, held, vip, last)] == [2, None, 1, 3]
        assert jobs.positions(s, now=T0 + timedelta(hours=2)) == {vip: 1, first: 2, held: 3, last: 4}
    assert _claim(sessions, now=T0).id == vip  # type: ignore[union-attr]


def test_a_users_waiting_jobs_can_be_cancelled_and_reprioritised_together(sessions: Sessions) -> None:
    with sessions.begin() as s:
        rendering, uploading, queued = (_queue(s, str(n), "mallory") for n in (100, 101, 102))
        other = _queue(s, "103", "alice")
    _claim(sessions, "w1")
    _claim(sessions, "w2")
    with sessions.begin() as s:
        jobs.mark_painted(s, uploading, worker="w2", result_image=b"jpeg", render_s=1.0)
        mallory = users.seen(s, P, "id-mallory", "mallory").id
        jobs.reprioritise(s, mallory, 4)
        # A job whose picture is on its way to its platform is left to finish.
        assert jobs.cancel_by(s, mallory, reason="banned") == [rendering, queued]
    with sessions() as s:
        found = {job_id: (jobs.get(s, job_id).state, jobs.get(s, job_id).priority)
                 for job_id in (rendering, uploading, queued, other)}
    assert found == {
        rendering: (JobState.CANCELLED, 0), uploading: (JobState.UPLOADING, 0),
        queued: (JobState.CANCELLED, 4), other: (JobState.QUEUED, 0),
    }


def test_a_username_is_matched_exactly_and_a_name_given_up_belongs_to_its_new_holder(sessions: Sessions) -> None:
    with sessions.begin() as s:
        for user_id, name in [("1", "abxc"), ("2", "ab_c"), ("3", "old_name")]:
            posts.record(s, platform=P, post_ref=f"10{user_id}", author_ref=user_id, author_username=name,
                         text="@bot", outcome=Outcome.IGNORED).seen_at = T0
            users.seen(s, P, user_id, name)
    with sessions.begin() as s:  # user 3 renamed; user 4 took "old_name" and wrote since
        posts.record(s, platform=P, post_ref="104", author_ref="4", author_username="Old_Name", text="@bot",
                     outcome=Outcome.IGNORED).seen_at = T0 + timedelta(hours=1)
        users.seen(s, P, "4", "Old_Name")
    with sessions() as s:
        # "_" and "%" are no wildcards: a ban meant for @ab_c never lands on @abxc.
        names = ("ab_c", "@AB_C", "abxc", "a%", "ab%c")
        assert [getattr(users.by_name(s, name), "user_ref", None) for name in names] == ["2", "2", "1", None, None]
        found = users.by_name(s, "old_name")
        assert found is not None and found.user_ref == "4"


def test_a_user_is_one_platforms_user(sessions: Sessions) -> None:
    with sessions.begin() as s:
        here, there = users.seen(s, P, "1", "ann"), users.seen(s, "elsewhere", "1", "ann")
        assert here.id != there.id and users.seen(s, P, "1", "ann_renamed") is here
        assert here.username == "ann_renamed"


# -- the API ledger ----------------------------------------------------------------------------------


BUDGET = Budget(monthly_usd=1.0, optional_until=0.5, new_work_until=0.8)


def test_a_used_up_window_waits_until_its_reset_and_a_cap_until_its_end(sessions: Sessions) -> None:
    endpoint = "POST /2/tweets"
    with sessions.begin() as s:
        assert ledger.decide(s, P, endpoint, Need.OWED, BUDGET, now=T0) == Go()
        ledger.record_window(s, P, endpoint, limit=100, remaining=0, reset_at=T0 + timedelta(minutes=5))
        decision = ledger.decide(s, P, endpoint, Need.OWED, BUDGET, now=T0)
        assert isinstance(decision, Wait) and decision.until == T0 + timedelta(minutes=5)
        assert ledger.decide(s, P, endpoint, Need.OWED, BUDGET, now=T0 + timedelta(minutes=6)) == Go()
        ledger.record_cap(s, P, endpoint, until=T0 + timedelta(days=3))
        capped = ledger.decide(s, P, endpoint, Need.OWED, BUDGET, now=T0 + timedelta(minutes=6))
        assert isinstance(capped, Wait) and "usage cap" in capped.reason


def test_two_workers_recording_an_endpoints_first_window_at_once_both_succeed(sessions: Sessions) -> None:
    endpoint = "POST /2/media/upload"
    first = sessions()
    first.begin()
    ledger.record_window(first, P, endpoint, limit=3000, remaining=2999, reset_at=T0)
    errors: list[Exception] = []

    def second_worker() -> None:
        try:
            with sessions.begin() as s:
                ledger.record_window(s, P, endpoint, limit=3000, remaining=2998, reset_at=T0)
        except Exception as exc:  # noqa: BLE001 - what the test is about
            errors.append(exc)

    worker = threading.Thread(target=second_worker)
    worker.start()
    worker.join(0.5)  # it waits on the first's uncommitted row (or SQLite's write lock)
    first.commit()
    first.close()
    worker.join(30)
    # A read then an insert made the second a duplicate key on PostgreSQL: its job failed.
    assert not errors, errors
    with sessions() as s:
        assert [(w.platform, w.endpoint, w.remaining) for w in ledger.windows(s)] == [(P, endpoint, 2998)]


def test_the_budget_stops_optional_posts_first_and_new_work_last(sessions: Sessions) -> None:
    def decisions(s: Session) -> list[type]:
        return [type(ledger.decide(s, P, "POST /2/tweets", need, BUDGET, now=T0)) for need in Need]

    with sessions.begin() as s:
        ledger.record_call(s, P, "GET /2/users/:id/mentions", status=200, cost_usd=0.10,
                           now=T0 - timedelta(days=40))  # last month: not counted
        ledger.record_call(s, P, "POST /2/tweets", status=201, cost_usd=0.55, now=T0)
        assert ledger.spent(s, now=T0) == pytest.approx(0.55)
        assert ledger.spent(s, platform=P, now=T0) == pytest.approx(0.55)
        assert ledger.spent(s, platform="elsewhere", now=T0) == 0.0  # each platform's budget is its own
        assert ledger.decide(s, "elsewhere", "POST /2/tweets", Need.OPTIONAL, BUDGET, now=T0) == Go()
        assert decisions(s) == [Stop, Go, Go]  # optional, new work, owed
        ledger.record_call(s, P, "POST /2/tweets", status=201, cost_usd=0.30, now=T0)
        assert decisions(s) == [Stop, Stop, Go]
        ledger.record_call(s, P, "POST /2/tweets", status=201, cost_usd=0.20, now=T0)
        assert decisions(s) == [Stop, Stop, Stop]
        stop = ledger.decide(s, P, "POST /2/tweets", Need.OWED, BUDGET, now=T0)
        assert isinstance(stop, Stop) and "$1.00 is spent" in stop.reason


# -- cursors, replies, SQLite settings -----------------------------------------------------------------------


def test_cursor_round_trip(sessions: Sessions) -> None:
    with sessions.begin() as s:
        assert cursors.get(s, P, cursors.MENTIONS) is None
        cursors.put(s, P, cursors.MENTIONS, "5")
    with sessions.begin() as s:
        cursors.put(s, P, cursors.MENTIONS, "7")
    with sessions() as s:
        assert cursors.get(s, P, cursors.MENTIONS) == "7"


def test_replies_owed_until_sent_or_given_up(sessions: Sessions) -> None:
    with sessions.begin() as s:
        a = replies.owe(s, platform=P, in_reply_to_ref="1", kind="refusal", text="how to").id
        b = replies.owe(s, platform=P, in_reply_to_ref="2", kind="failure", text="sorry").id
    with sessions.begin() as s:
        replies.mark_sent(s, a, "10")
        replies.mark_attempt_failed(s, b, "503")
        replies.mark_attempt_failed(s, b, "503")
    with sessions() as s:
        assert [r.id for r in replies.unsent(s, max_attempts=3)] == [b]
        assert replies.unsent(s, max_attempts=2) == []
        assert replies.for_post(s, P, "1")[0].reply_ref == "10"
        assert replies.unsent(s, platform="elsewhere", max_attempts=3) == []


def test_a_reply_with_a_delivery_deadline_is_due_past_its_attempts_until_then(sessions: Sessions) -> None:
    until = T0 + timedelta(hours=6)
    with sessions.begin() as s:
        a = replies.owe(s, platform=P, in_reply_to_ref="1", kind="result", text="your picture").id
        for _ in range(5):
            replies.mark_attempt_failed(s, a, "503", deliver_until=until)
    with sessions() as s:
        assert [r.id for r in replies.unsent(s, max_attempts=3, now=T0)] == [a]
        assert [r.id for r in replies.unsent(s, max_attempts=3, now=until)] == [a]  # its last attempt
        assert replies.unsent(s, max_attempts=3, now=until + timedelta(seconds=1)) == []
    with sessions.begin() as s:
        replies.give_up(s, a, "gone", max_attempts=3)
    with sessions() as s:
        assert replies.unsent(s, max_attempts=3, now=T0) == []


def test_a_reply_is_claimed_by_one_deliverer_at_a_time_and_waits_out_its_backoff(sessions: Sessions) -> None:
    with sessions.begin() as s:
        a = replies.owe(s, platform=P, in_reply_to_ref="1", kind="refusal", text="how to").id
        b = replies.owe(s, platform=P, in_reply_to_ref="2", kind="failure", text="sorry").id
    with sessions.begin() as s:
        assert replies.claim(s, a, by="poller", now=T0)
    with sessions.begin() as s:
        assert not replies.claim(s, a, by="worker", now=T0 + timedelta(seconds=10))  # the poller holds it
        assert [r.id for r in replies.unsent(s, max_attempts=3, now=T0)] == [b]
        replies.mark_attempt_failed(s, b, "503", not_before=T0 + timedelta(minutes=1))
    with sessions() as s:
        assert replies.unsent(s, max_attempts=3, now=T0 + timedelta(seconds=30)) == []  # a claimed, b backs off
        assert [r.id for r in replies.unsent(s, max_attempts=3, now=T0 + timedelta(minutes=2))] == [b]
        # A deliverer that died leaves its claim to lapse; the reply is then due again.
        assert [r.id for r in replies.unsent(s, max_attempts=3, now=T0 + replies.CLAIM * 2)] == [a, b]
    with sessions.begin() as s:
        assert replies.claim(s, a, by="worker", now=T0 + replies.CLAIM * 2)
        replies.mark_sent(s, a, "10")
    with sessions.begin() as s:
        assert not replies.claim(s, a, by="poller", now=T0 + replies.CLAIM * 4)  # sent: never again


def test_two_deliverers_racing_for_a_reply_one_gets_it(sessions: Sessions) -> None:
    with sessions.begin() as s:
        reply_id = replies.owe(s, platform=P, in_reply_to_ref="1", kind="refusal", text="how to").id
    barrier = threading.Barrier(8)
    won: list[str] = []

    def deliverer(name: str) -> None:
        barrier.wait()
        with sessions.begin() as s:
            if replies.claim(s, reply_id, by=name):
                won.append(name)

    threads = [threading.Thread(target=deliverer, args=(f"d{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1


def test_days_are_utc_days_whatever_the_database_servers_time_zone(db_url: str) -> None:
    if db_url.startswith("postgresql"):
        admin = open_engine(db_url)
        with admin.begin() as c:  # a server, or a database, set to another zone
            c.execute(text(f'ALTER DATABASE "{admin.url.database}" SET TIME ZONE \'America/New_York\''))
        admin.dispose()
    engine = open_engine(db_url)
    with session_factory(engine).begin() as s:
        ledger.record_call(s, P, "GET /2/users/:id/mentions", status=200, cost_usd=0.5,
                           now=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
        assert ledger.calls_by_day(s, since=datetime(2026, 2, 1, tzinfo=UTC)) == [("2026-03-01", 1, 0.5)]
    engine.dispose()


def test_a_read_only_session_holds_no_writer_up_on_sqlite(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'f.sqlite3'}")
    schema.upgrade(engine)
    reads, writes = session_factory(engine, read_only=True), session_factory(engine)
    with reads.begin() as page:  # a dashboard page being drawn
        assert replies.unsent(page, max_attempts=3) == []
        started = time.monotonic()
        with writes.begin() as worker:  # a worker's write meanwhile, on another connection
            replies.owe(worker, platform=P, in_reply_to_ref="1", kind="refusal", text="how to")
        assert time.monotonic() - started < 5  # not the 30 s busy wait for the lock
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'f.sqlite3'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_the_schema_is_checked_at_start(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'f.sqlite3'}")
    with pytest.raises(SchemaOutOfDate, match=f"is empty; this Forger needs migration {schema.head()}: run `forger db upgrade`"):
        schema.check(engine)
    schema.upgrade(engine)
    schema.check(engine)
    schema.upgrade(engine)  # a second upgrade is a no-op
    assert schema.current(engine) == schema.head()
    engine.dispose()
