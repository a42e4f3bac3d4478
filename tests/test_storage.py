"""The queue's contract on SQLite: enqueue, claim, finish, and the rules between them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import cursors, jobs, mentions, replies
from storage.errors import IllegalTransition
from storage.models import JobState, Outcome


def _queue(session: Session, tweet_id: str, author: str = "alice") -> int:
    mentions.record(session, tweet_id=tweet_id, author_id="1", author_username=author, text="@bot", outcome=Outcome.QUEUED)
    session.flush()
    job = jobs.enqueue(
        session, tweet_id=tweet_id, author_id="1", author_username=author,
        content_image=b"picture-" + tweet_id.encode(), style_image=b"painting",
    )
    return job.id


def test_claims_oldest_first_and_each_job_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        first, second = _queue(s, "100"), _queue(s, "101")
    with sessions.begin() as s:
        a = jobs.claim_next(s)
    with sessions.begin() as s:
        b = jobs.claim_next(s)
    with sessions.begin() as s:
        assert jobs.claim_next(s) is None
    assert a is not None and b is not None
    assert (a.id, b.id) == (first, second)
    assert a.content_image == b"picture-100" and a.style_image == b"painting"
    assert a.attempts == 1
    with sessions() as s:
        assert jobs.get(s, first).state is JobState.RENDERING
        assert jobs.get(s, first).started_at is not None


def test_a_tweet_is_queued_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        _queue(s, "100")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        _queue(s, "100")
    with sessions() as s:
        assert jobs.counts(s)[JobState.QUEUED] == 1


def test_replied_job_records_reply_and_result(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    with sessions.begin() as s:
        jobs.claim_next(s)
        jobs.mark_replied(s, job_id, reply_tweet_id="900", result_image=b"jpeg")
    with sessions() as s:
        job = jobs.get(s, job_id)
        assert (job.state, job.reply_tweet_id, job.result_image) == (JobState.REPLIED, "900", b"jpeg")
        assert job.finished_at is not None and job.finished_at >= job.created_at


def test_illegal_transitions_raise(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    with pytest.raises(IllegalTransition, match="cannot go from queued to replied"), sessions.begin() as s:
        jobs.mark_replied(s, job_id, reply_tweet_id="1", result_image=b"")
    with sessions.begin() as s:
        jobs.claim_next(s)
        jobs.mark_failed(s, job_id, error="not an image")
    with pytest.raises(IllegalTransition), sessions.begin() as s:
        jobs.requeue(s, job_id, error="again")


def test_requeued_job_is_claimed_again_with_attempts_counted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        job_id = _queue(s, "100")
    with sessions.begin() as s:
        jobs.claim_next(s)
        jobs.requeue(s, job_id, error="X was down")
    with sessions.begin() as s:
        again = jobs.claim_next(s)
    assert again is not None and again.id == job_id and again.attempts == 2


def test_cursor_round_trip(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        assert cursors.get(s, cursors.MENTIONS) is None
        cursors.put(s, cursors.MENTIONS, "5")
    with sessions.begin() as s:
        cursors.put(s, cursors.MENTIONS, "7")
    with sessions() as s:
        assert cursors.get(s, cursors.MENTIONS) == "7"


def test_replies_owed_until_sent_or_given_up(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        a = replies.owe(s, in_reply_to_tweet_id="1", kind="refusal", text="how to").id
        b = replies.owe(s, in_reply_to_tweet_id="2", kind="failure", text="sorry").id
    with sessions.begin() as s:
        replies.mark_sent(s, a, "10")
        replies.mark_attempt_failed(s, b, "503")
        replies.mark_attempt_failed(s, b, "503")
    with sessions() as s:
        assert [r.id for r in replies.unsent(s, max_attempts=3)] == [b]
        assert replies.unsent(s, max_attempts=2) == []
        assert replies.for_tweet(s, "1")[0].reply_tweet_id == "10"


def test_sqlite_runs_in_wal_mode(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
