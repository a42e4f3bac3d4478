"""The web API over real HTTP (uvicorn on loopback): submit, follow, fetch, cancel, and every refusal.

The tests taking ``sessions`` run on SQLite and on PostgreSQL. Jobs are painted by the real worker
(``bot.worker.work_once``) with the quick renderer.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from bot.gallery import Gallery
from bot.cli import main
from bot.rendering import QuickRenderer
from bot.web import create_app
from bot.web.public import api
from bot.web.public.errors import CODES
from bot.worker import Lease, work_once
from storage import api_keys, jobs, users
from storage.models import Job, JobState
from tests.webapp import png, png_bomb, serving, serving_app, web_config

Sessions = sessionmaker[Session]
LEASE = Lease(worker="test-worker", lease_s=60, max_attempts=3)


@pytest.fixture
def base(sessions: Sessions) -> Iterator[str]:
    with serving(web_config(), sessions) as url:
        yield url


def paint(sessions: Sessions) -> int | None:
    return work_once(sessions, QuickRenderer(), LEASE, gallery=Gallery.load())


def submit(base: str, photo: bytes, *, key: str | None = None, painting: bytes | None = None,
           name: str | None = "starry-night", **fields: str) -> requests.Response:
    files: dict[str, tuple[str, bytes]] = {"photo": ("photo.jpg", photo)}
    data = dict(fields)
    if painting is not None:
        files["painting"] = ("painting.jpg", painting)
    elif name is not None:
        data["painting_name"] = name
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{base}api/v1/paintings", files=files, data=data, headers=headers, timeout=30)


def refused(response: requests.Response, status: int, code: str) -> str:
    """The refusal's message, after checking its status, code and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert CODES[code][0] == status
    return str(body["error"]["message"])


def new_key(sessions: Sessions, name: str = "app", *, per_day: int = 10, priority: int = 0) -> str:
    with sessions.begin() as s:
        return api_keys.create(s, name, per_day=per_day, priority=priority)[1]


def test_a_photo_is_submitted_followed_painted_and_fetched(sessions: Sessions, base: str, samples: Path) -> None:
    answer = submit(base, (samples / "coffee.jpg").read_bytes(), size="96", strength="high")
    assert answer.status_code == 202, answer.text
    status = answer.json()
    token = status["token"]
    assert len(token) >= 32
    assert answer.headers["Location"] == f"{base}api/v1/paintings/{token}" == status["links"]["status"]
    assert (status["state"], status["position"], status["progress"]) == ("queued", 1, 0.0)
    assert status["links"]["page"] == f"{base}p/{token}"
    with sessions() as s:  # the token itself is nowhere in the database: only its hash
        job = s.query(Job).one()
        assert job.token_hash == api_keys.digest(token) and job.platform is None and job.post_ref is None
        assert job.options == {"strength": "high", "keep_colours": False, "protect_faces": True, "size": 96}
        owner = users.get(s, job.user_id)
        assert owner is not None and (owner.platform, owner.user_ref) == ("web", "ip:127.0.0.1")

    refused(requests.get(status["links"]["result"], timeout=10), 409, "not_ready")
    assert paint(sessions) is not None
    done = requests.get(status["links"]["status"], timeout=10).json()
    assert (done["state"], done["progress"], done["position"]) == ("done", 1.0, None)
    picture = requests.get(status["links"]["result"], timeout=10)
    assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/jpeg"
    assert picture.headers["Content-Disposition"].startswith("inline")
    assert max(Image.open(io.BytesIO(picture.content)).size) == 96
    download = requests.get(status["links"]["result"], params={"download": "true"}, timeout=10)
    assert download.headers["Content-Disposition"].startswith("attachment") and download.content == picture.content
    photo = requests.get(status["links"]["photo"], timeout=10)
    assert photo.content == (samples / "coffee.jpg").read_bytes()
    with sessions() as s:  # the web job ends replied, its picture kept, with nothing owed to any platform
        job = s.query(Job).one()
        assert job.state is JobState.REPLIED and job.reply_ref is None


def test_the_event_stream_follows_a_job_to_its_end(sessions: Sessions, base: str, samples: Path,
                                                   paintings: Path) -> None:
    key = new_key(sessions, priority=4)
    answer = submit(base, (samples / "chelsea.jpg").read_bytes(), key=key,
                    painting=(paintings / "the_scream.jpg").read_bytes())
    assert answer.status_code == 202, answer.text
    status = answer.json()
    with sessions() as s:
        assert s.query(Job).one().priority == 4  # the key's
    seen: list[dict[str, object]] = []
    with requests.get(status["links"]["events"], stream=True, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        worker = None
        for line in lines:  # the stream ends by itself once the job is done
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if worker is None:
                    worker = threading.Thread(target=paint, args=(sessions,))
                    worker.start()
        assert worker is not None
        worker.join()
    assert seen[0]["state"] == "queued" and seen[-1]["state"] == "done" and seen[-1]["progress"] == 1.0
    refused(requests.get(f"{base}api/v1/paintings/{'x' * 32}/events", timeout=10), 404, "not_found")


def test_wrong_types_are_judged_by_their_bytes(base: str, samples: Path) -> None:
    message = refused(submit(base, b"%PDF-1.4 not a photo at all"), 415, "unsupported_type")
    assert message == "The photo is not a JPEG, PNG, WebP or GIF image."
    refused(submit(base, png(), painting=b"<html>hello</html>"), 415, "unsupported_type")
    # A PNG named photo.jpg is a PNG: accepted.
    assert submit(base, png()).status_code == 202
    refused(submit(base, b"\xff\xd8\xff\xe0 broken jpeg"), 422, "damaged_image")
    refused(submit(base, png((40, 40))), 422, "too_small")


def test_too_large_uploads_are_refused_before_and_after_reading(base: str) -> None:
    big = b"\xff\xd8\xff" + bytes(600 * 1024)  # over the 512 KiB of the tests' web.max_upload_bytes
    assert "more than the 524,288 bytes" in refused(submit(base, big), 413, "too_large")
    huge = big * 3  # the whole request is larger than two uploads: refused from its Content-Length
    assert "each image may have 524,288" in refused(submit(base, huge), 413, "too_large")


def test_a_decompression_bomb_is_refused_from_its_header(base: str) -> None:
    bomb = png_bomb()
    assert len(bomb) < 1024
    message = refused(submit(base, bomb), 413, "too_many_pixels")
    assert "pixels allowed" in message


def test_a_long_thin_photo_is_refused_saying_so(base: str) -> None:
    # #21: a 64x5000 photo was painted as a 16x512 strip; beyond bot.max_aspect_ratio (6) it is refused.
    assert "longer than 6 times its width" in refused(submit(base, png((64, 800))), 422, "bad_shape")


def test_the_painting_and_options_are_checked(base: str) -> None:
    assert "Did you mean 'starry night'" in refused(submit(base, png(), name="stary night"), 422, "unknown_painting")
    refused(submit(base, png(), name=None), 422, "painting_missing")
    refused(submit(base, png(), painting=png(), name=None, painting_name="the-scream"), 422, "painting_ambiguous")
    assert "32 to 256" in refused(submit(base, png(), size="2048"), 422, "bad_option")
    assert "strength" in refused(submit(base, png(), strength="max"), 422, "invalid_request")
    refused(requests.post(f"{base}api/v1/paintings", data={"painting_name": "x"}, timeout=10), 422, "invalid_request")
    refused(requests.put(f"{base}api/v1/paintings", timeout=10), 405, "method_not_allowed")
    refused(requests.get(f"{base}api/v1/nothing", timeout=10), 404, "not_found")


def test_over_quota_is_429_with_retry_after(sessions: Sessions, base: str) -> None:
    for _ in range(2):  # the tests' web.anonymous_per_day
        assert submit(base, png()).status_code == 202
    answer = submit(base, png())
    refused(answer, 429, "over_quota")
    assert 86_000 < int(answer.headers["Retry-After"]) <= 86_400
    key = new_key(sessions, per_day=1)  # a key has its own quota
    assert submit(base, png(), key=key).status_code == 202
    refused(submit(base, png(), key=key), 429, "over_quota")


def test_too_many_requests_a_minute_is_429_with_retry_after(sessions: Sessions) -> None:
    with serving(web_config(requests_per_minute=3), sessions) as url:
        for _ in range(3):
            refused(requests.get(f"{url}api/v1/paintings/{'a' * 32}", timeout=10), 404, "not_found")
        answer = requests.get(f"{url}api/v1/paintings/{'a' * 32}", timeout=10)
        refused(answer, 429, "rate_limited")
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        # Another caller (a key) has its own minute.
        key = new_key(sessions)
        answer = requests.get(f"{url}api/v1/gallery", headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 200


def test_bad_and_revoked_keys_are_refused(sessions: Sessions, base: str) -> None:
    refused(submit(base, png(), key="fk_not-a-key"), 401, "bad_key")
    key = new_key(sessions)
    assert submit(base, png(), key=key).status_code == 202
    with sessions.begin() as s:
        found = api_keys.by_secret(s, key)
        assert found is not None
        api_keys.revoke(s, found)
    refused(submit(base, png(), key=key), 401, "bad_key")
    refused(requests.get(f"{base}api/v1/gallery", headers={"Authorization": f"Bearer {key}"}, timeout=10),
            401, "bad_key")


def test_without_a_key_where_the_operator_says_so(sessions: Sessions) -> None:
    with serving(web_config(anonymous_per_day=0), sessions) as url:
        refused(submit(url, png()), 401, "key_required")
        assert submit(url, png(), key=new_key(sessions)).status_code == 202


def test_a_banned_caller_is_refused(sessions: Sessions, base: str) -> None:
    assert submit(base, png()).status_code == 202
    with sessions.begin() as s:
        caller = users.seen(s, "web", "ip:127.0.0.1", "web 127.0.0.1")
        users.ban(s, caller, "abuse")
    refused(submit(base, png()), 403, "banned")


def test_another_callers_token(sessions: Sessions, base: str) -> None:
    alice, bob = new_key(sessions, "alice"), new_key(sessions, "bob")
    status = submit(base, png(), key=alice).json()
    # Bob cannot cancel Alice's painting (a token is a share link: seeing is allowed).
    refused(requests.delete(status["links"]["status"], headers={"X-API-Key": bob}, timeout=10), 403, "not_yours")
    refused(requests.delete(status["links"]["status"], timeout=10), 403, "not_yours")  # nor an anonymous caller
    assert requests.get(status["links"]["status"], headers={"X-API-Key": bob}, timeout=10).json()["state"] == "queued"
    # A token that is not one (guessed, or a job's number) finds nothing.
    for wrong in ("1", status["token"][:-1] + ("A" if status["token"][-1] != "A" else "B"), "z" * 200):
        refused(requests.get(f"{base}api/v1/paintings/{wrong}", timeout=10), 404, "not_found")
        refused(requests.get(f"{base}api/v1/paintings/{wrong}/result", timeout=10), 404, "not_found")


def test_a_cancelled_job_is_never_painted(sessions: Sessions, base: str) -> None:
    key = new_key(sessions)
    status = submit(base, png(), key=key).json()
    answer = requests.delete(status["links"]["status"], headers={"X-API-Key": key}, timeout=10)
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert paint(sessions) is None  # nothing left to paint
    refused(requests.get(status["links"]["result"], timeout=10), 409, "cancelled")
    refused(requests.delete(status["links"]["status"], headers={"X-API-Key": key}, timeout=10), 409, "cancelled")
    done = submit(base, png(), key=key).json()
    paint(sessions)
    refused(requests.delete(done["links"]["status"], headers={"X-API-Key": key}, timeout=10), 409, "finished")


def test_a_job_that_failed_says_so(sessions: Sessions, base: str) -> None:
    status = submit(base, png()).json()
    with sessions.begin() as s:
        job = s.query(Job).one()
        jobs.mark_failed(s, job.id, worker=None, error="renderer crashed: boom")
    body = requests.get(status["links"]["status"], timeout=10).json()
    assert body["state"] == "failed" and "boom" not in body["message"]
    refused(requests.get(status["links"]["result"], timeout=10), 409, "failed")


def test_a_picture_deleted_by_retention_is_gone(sessions: Sessions, base: str) -> None:
    status = submit(base, png()).json()
    paint(sessions)
    with sessions.begin() as s:
        s.query(Job).update({Job.result_image: None})
    refused(requests.get(status["links"]["result"], timeout=10), 410, "deleted")


def test_the_gallery_lists_paintings_with_thumbnails(base: str) -> None:
    found = requests.get(f"{base}api/v1/gallery", timeout=10).json()
    assert {p["name"] for p in found} >= {"starry-night", "scream"}
    starry = next(p for p in found if p["name"] == "starry-night")
    assert starry["artist"] == "Vincent van Gogh"
    thumb = requests.get(starry["thumbnail"], timeout=10)
    assert thumb.headers["Content-Type"] == "image/jpeg" and "max-age" in thumb.headers["Cache-Control"]
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    refused(requests.get(f"{base}api/v1/gallery/nope/thumbnail", timeout=10), 404, "not_found")


def test_every_public_route_is_in_the_openapi_document(sessions: Sessions, base: str) -> None:
    document = requests.get(f"{base}api/v1/openapi.json", timeout=10).json()
    routes = {(route.path, method.lower()) for route in api.router.routes
              for method in getattr(route, "methods", ()) if method != "HEAD"}
    assert all(path.startswith("/api/v1/") for path, _method in routes)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert len(routes) >= 7 and routes <= documented
    submit_doc = document["paths"]["/api/v1/paintings"]["post"]
    assert {"202", "413", "415", "429"} <= set(submit_doc["responses"])
    assert "over_quota" in submit_doc["responses"]["429"]["description"]


def test_api_keys_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"FORGER_DATABASE_URL": db_url}
    made = runner.invoke(main, ["api-key", "create", "my app", "--per-day", "9", "--priority", "2"], env=env)
    assert made.exit_code == 0, made.output
    secret = made.output.split("\n")[1]
    assert secret.startswith("fk_")
    listed = runner.invoke(main, ["api-key", "list", "--json"], env=env)
    rows = json.loads(listed.output)
    assert [(r["name"], r["per_day"], r["priority"], r["revoked_at"]) for r in rows] == [("my app", 9, 2, None)]
    assert secret not in listed.output
    assert runner.invoke(main, ["api-key", "revoke", str(rows[0]["id"])], env=env).exit_code == 0
    assert json.loads(runner.invoke(main, ["api-key", "list", "--json"], env=env).output)[0]["revoked_at"]
    missing = runner.invoke(main, ["api-key", "revoke", "99"], env=env)
    assert missing.exit_code == 1 and "no API key 99" in missing.output


def test_forger_submit_follows_and_saves_the_picture(sessions: Sessions, base: str, samples: Path,
                                                     tmp_path: Path) -> None:
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            if paint(sessions) is None:
                stop.wait(0.1)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        out = tmp_path / "painted.jpg"
        result = CliRunner().invoke(main, ["submit", str(samples / "coffee.jpg"), "the scream", "-o", str(out),
                                           "--server", base, "--size", "64"])
        assert result.exit_code == 0, result.output
        with Image.open(out) as picture:
            assert max(picture.size) == 64
        assert "share: " + base + "p/" in result.output
        bad = CliRunner().invoke(main, ["submit", str(samples / "coffee.jpg"), "starry nite", "-o", str(out),
                                        "--server", base])
        assert bad.exit_code == 1 and "Did you mean 'starry night'" in bad.output
    finally:
        stop.set()
        thread.join()


def test_a_new_callers_first_requests_at_once_are_queued_within_its_quota(sessions: Sessions, base: str) -> None:
    key = new_key(sessions, per_day=4)  # its users row does not exist yet: every request wants to make it
    barrier = threading.Barrier(6)
    answers: list[int] = []

    def send() -> None:
        barrier.wait()
        answers.append(submit(base, png(), key=key).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [202] * 4 + [429] * 2  # at once, yet no more than the quota
    with sessions() as s:
        assert len({job.user_id for job in s.query(Job)}) == 1


def test_event_streams_share_one_reader(engine: Engine, sessions: Sessions) -> None:
    app = create_app(web_config(), sessions)
    with serving_app(app) as base:
        key = new_key(sessions, per_day=10)
        followed = [submit(base, png(), key=key).json() for _ in range(6)]
        statements: list[str] = []
        seen: dict[int, list[str]] = {n: [] for n in range(len(followed))}

        def listen(n: int) -> None:
            with requests.get(followed[n]["links"]["events"], stream=True, timeout=60) as stream:
                for line in stream.iter_lines(decode_unicode=True):
                    if line.startswith("data:"):
                        seen[n].append(json.loads(line[5:])["state"])

        streams = [threading.Thread(target=listen, args=(n,)) for n in range(len(followed))]
        for t in streams:
            t.start()
        while not all(seen.values()):
            time.sleep(0.05)
        count = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", count)
        time.sleep(3.2)  # six streams for three seconds: a reader each would read their jobs 36 times or more
        event.remove(engine, "before_cursor_execute", count)
        while paint(sessions) is not None:
            pass
        for t in streams:
            t.join(30)
    reads = [sql for sql in statements if "jobs.token_hash IN" in sql]
    assert 3 <= len(reads) <= 8, statements  # a tick each half second (fewer on a busy machine), six jobs a query
    assert not any("jobs.token_hash =" in sql for sql in statements)
    assert all(states[0] == "queued" and states[-1] == "done" for states in seen.values()), seen
    assert app.state.public.watcher.ticks >= 3


def test_status_polls_are_answered_from_one_reading(engine: Engine, sessions: Sessions) -> None:
    app = create_app(web_config(), sessions)
    with serving_app(app) as base:
        key = new_key(sessions, per_day=10)
        links = [submit(base, png(), key=key).json()["links"]["status"] for _ in range(3)]
        assert [requests.get(link, timeout=10).json()["position"] for link in links] == [1, 2, 3]  # read afresh
        time.sleep(0.6)  # the reader has read the three polled jobs since
        statements: list[str] = []
        count = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", count)
        started = time.monotonic()
        places = [[requests.get(link, timeout=10).json()["position"] for link in links] for _ in range(5)]
        elapsed = time.monotonic() - started
        event.remove(engine, "before_cursor_execute", count)
        assert paint(sessions) is not None
        time.sleep(0.8)  # a poll's answer was read at most 0.75 s before it
        after = [requests.get(link, timeout=10).json() for link in links]
        # Cancelled here, its poll says so at once, whatever the reader read before.
        assert requests.delete(links[2], headers={"X-API-Key": key}, timeout=10).json()["state"] == "cancelled"
        cancelled = requests.get(links[2], timeout=10).json()["state"]
    assert places == [[1, 2, 3]] * 5
    assert [(a["state"], a["position"]) for a in after] == [("done", None), ("queued", 1), ("queued", 2)]
    assert cancelled == "cancelled"
    # Fifteen polls: no query of their own (but for one whose tick came late on a busy machine),
    # only the reader's ticks (the three jobs in one query, the queue's places in another).
    own = [sql for sql in statements if "jobs.token_hash =" in sql]
    assert len(own) <= 2 and not any("count(" in sql.lower() for sql in statements), statements
    ticks = [sql for sql in statements if "jobs.token_hash IN" in sql]
    assert len(ticks) <= elapsed / 0.5 + 1, statements


def test_a_polling_key_is_read_once_a_second(engine: Engine, sessions: Sessions) -> None:
    app = create_app(web_config(), sessions)
    with serving_app(app) as base:
        key = new_key(sessions, per_day=10)
        link = submit(base, png(), key=key).json()["links"]["status"]
        statements: list[str] = []
        count = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", count)
        started = time.monotonic()
        for _ in range(10):
            assert requests.get(link, headers={"X-API-Key": key}, timeout=10).status_code == 200
        elapsed = time.monotonic() - started
        event.remove(engine, "before_cursor_execute", count)
        with sessions.begin() as s:
            found = api_keys.by_secret(s, key)
            assert found is not None
            api_keys.revoke(s, found)
        time.sleep(1.05)  # a key read a second ago is read again
        refused(requests.get(link, headers={"X-API-Key": key}, timeout=10), 401, "bad_key")
    assert len([sql for sql in statements if "FROM api_keys" in sql]) <= elapsed + 2, statements  # ten polls
