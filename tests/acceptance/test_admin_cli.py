"""The admin commands of ``forger``, run in-process with click's runner against a real SQLite file.

Each test copies config.yaml with ``database.url`` pointing into its tmp folder, runs
``forger db upgrade`` and seeds jobs with the storage functions the bot itself uses.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bot.cli import main
from bot.web.admin.passwords import verify
from storage import admins, jobs, posts, schema, users
from storage.db import open_engine, session_factory
from storage.models import Outcome
from tests.factories import write_config
from tests.integration.test_admin_web import PAINTING, PASSWORD, PHOTO, RESULT, Seeded, seed

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


class Forger:
    """``forger --config <tmp config> ...`` in this process."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        # A wide terminal, so that rich lays the queue table out on one line per job.
        return self.runner.invoke(main, ["--config", str(self.config), *args], env={"COLUMNS": "200", **(env or {})},
                                  input=input)

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self(*args, input=input)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, env: dict[str, str | None] | None = None) -> str:
        """The command exits 1 with one clear line, not a traceback; returns what it said."""
        result = self(*args, env=env)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output and "secret" not in result.output
        return result.output


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.yaml", tmp_path)


@pytest.fixture
def forger(tmp_path: Path) -> Forger:
    forger = Forger(_config(tmp_path))
    assert "database at migration" in forger.ok("db", "upgrade")
    return forger


@pytest.fixture
def ids(tmp_path: Path, forger: Forger) -> Seeded:
    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    try:
        return seed(session_factory(engine))
    finally:
        engine.dispose()


def test_queue_as_a_table(forger: Forger, ids: Seeded) -> None:
    out = forger.ok("queue")
    for header in ("id", "user", "state", "age", "position", "progress", "attempts"):
        assert header in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()[:1] and line.split()[1:2]
             and line.split()[1].isdigit()}
    assert "@carol" in lines[str(ids.rendering)] and "rendering" in lines[str(ids.rendering)]
    assert "40%" in lines[str(ids.rendering)]
    assert "failed" in lines[str(ids.failed)] and "the renderer ran out of memory" in lines[str(ids.failed)]


def test_queue_as_json_with_filters(forger: Forger, ids: Seeded) -> None:
    rows = forger.json("queue")
    assert [r["id"] for r in rows] == sorted([ids.failed, ids.replied, ids.rendering, ids.queued, ids.queued_too],
                                             reverse=True)
    assert set(rows[0]) >= {"id", "user", "state", "age_s", "position", "progress", "attempts"}
    by_id = {r["id"]: r for r in rows}
    assert (by_id[ids.queued]["position"], by_id[ids.queued_too]["position"]) == (1, 2)
    assert by_id[ids.rendering]["progress"] == pytest.approx(0.4)
    assert [r["id"] for r in forger.json("queue", "--state", "failed")] == [ids.failed]
    assert [r["id"] for r in forger.json("queue", "--user", "@Alice")] == [ids.queued_too, ids.failed]
    both = forger.json("queue", "--state", "queued", "--state", "failed", "--user", "alice")
    assert [r["id"] for r in both] == [ids.queued_too, ids.failed]
    assert "unknown state 'bogus' (known: queued, " in forger.fails("queue", "--state", "bogus")


def test_one_job_in_full(forger: Forger, ids: Seeded) -> None:
    out = forger.ok("job", str(ids.replied))
    assert f"job {ids.replied}: @bob, replied" in out and "replied with post 9002" in out
    assert f"forger job-image {ids.replied} result" in out
    detail = forger.json("job", str(ids.replied))
    assert detail["row"]["state"] == "replied" and detail["reply_ref"] == "9002"
    assert detail["images"] == {"content": len(PHOTO), "style": len(PAINTING), "result": len(RESULT)}
    assert [e["to_state"] for e in detail["history"]] == ["queued", "rendering", "uploading", "replied"]
    assert detail["render_s"] == 84.0 and detail["started_at"] and detail["finished_at"]
    assert detail["options"] == {"strength": "normal", "keep_colours": False, "protect_faces": True}
    assert "options: strength=normal, keep_colours=False, protect_faces=True" in out
    failed = forger.json("job", str(ids.failed))
    assert failed["row"]["error"] == "the renderer ran out of memory"


def test_an_unknown_job_is_one_clear_line(forger: Forger, ids: Seeded) -> None:
    for job_id in ("999", "0", "99999999999999999999"):  # the last is beyond any database integer
        for command in (("job",), ("retry",), ("cancel",), ("job-image",)):
            extra = ("content", "-o", "x") if command == ("job-image",) else ()
            assert f"Error: no job {job_id}" in forger.fails(*command, job_id, *extra)


def test_an_image_that_cannot_be_written_is_one_clear_line(forger: Forger, ids: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "no such folder" / "result.png"
    assert f"cannot write {out}" in forger.fails("job-image", str(ids.replied), "result", "-o", str(out))


def test_job_image_writes_the_stored_bytes(forger: Forger, ids: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "result.png"
    assert "wrote" in forger.ok("job-image", str(ids.replied), "result", "-o", str(out))
    assert out.read_bytes() == RESULT
    assert f"job {ids.queued} has no result image yet" in forger.fails(
        "job-image", str(ids.queued), "result", "-o", str(tmp_path / "none.png"))


def test_retry_and_cancel(forger: Forger, ids: Seeded) -> None:
    assert f"job {ids.failed} queued again" in forger.ok("retry", str(ids.failed))
    retried = forger.json("job", str(ids.failed))
    assert (retried["row"]["state"], retried["row"]["attempts"]) == ("queued", 0)
    assert retried["history"][-1]["reason"] == "retried by cli"
    assert "only failed jobs can be retried" in forger.fails("retry", str(ids.failed))
    assert f"job {ids.queued} cancelled" in forger.ok("cancel", str(ids.queued))
    assert forger.json("job", str(ids.queued))["row"]["state"] == "cancelled"
    assert "can no longer be cancelled" in forger.fails("cancel", str(ids.replied))


def test_user_ban_unban_priority(forger: Forger, ids: Seeded) -> None:
    assert "@bob (x id id-bob): not banned, priority 0, 1 renders in 24 h, 1 jobs in all" in forger.ok("user", "bob")
    banned = forger.json("user", "@bob", "--ban", "spam")
    assert (banned["banned"], banned["ban_reason"]) == (True, "spam")
    assert "banned (spam)" in forger.ok("user", "bob")
    assert "not banned" in forger.ok("user", "bob", "--unban")
    carol = forger.json("user", "carol", "--priority", "7")
    assert (carol["priority"], carol["jobs_total"], carol["banned"]) == (7, 1, False)
    assert "no user @nobody has written to the bot" in forger.fails("user", "nobody", "--ban", "x")
    clash = forger("user", "bob", "--ban", "x", "--unban")
    assert clash.exit_code == 2 and "make no sense" in clash.output
    assert forger.json("user", "bob")["banned"] is False  # the refused command changed nothing


def test_a_ban_cancels_the_users_waiting_jobs_and_a_priority_moves_their_queued_ones(
    forger: Forger, ids: Seeded
) -> None:
    assert forger.json("job", str(ids.queued))["row"]["priority"] == 0

    said = forger.ok("user", "alice", "--ban", "spam")
    forger.ok("user", "dave", "--priority", "5")

    assert f"cancelled their jobs {ids.queued_too}" in said
    cancelled = forger.json("job", str(ids.queued_too))
    assert cancelled["row"]["state"] == "cancelled" and "banned: spam" in cancelled["history"][-1]["reason"]
    assert forger.json("job", str(ids.failed))["row"]["state"] == "failed"  # finished jobs stay as they are
    assert forger.json("job", str(ids.queued))["row"]["priority"] == 5


def test_stats_as_json(forger: Forger, ids: Seeded) -> None:
    found = forger.json("stats")
    assert found["jobs_by_state"] == {"queued": 2, "rendering": 1, "uploading": 0, "replied": 1, "failed": 1,
                                      "cancelled": 0}
    assert (found["renders_last_hour"], found["median_render_s"]) == (1, 84.0)
    assert found["api_calls_this_month"] == 2 and found["spent_usd"] == pytest.approx(0.065)
    assert found["budget_usd"] == 50.0  # the x section's budget.monthly_usd
    assert found["windows"][0]["endpoint"] == "GET /2/users/:id/mentions"
    assert found["database_bytes"] > 0
    shown = forger.ok("stats")
    assert "platform APIs: 2 calls this month, $0.07 of $50.00" in shown and "database: 0." in shown


def test_a_web_port_already_taken_is_one_clear_line(forger: Forger) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        forger.runner.invoke(main, ["--config", str(forger.config), "admin", "set-password"],
                             input=f"{PASSWORD}\n{PASSWORD}\n")
        said = forger.fails("admin", "--port", str(port), env={"PORT": None})

    assert f"cannot serve on 127.0.0.1:{port}" in said and "serving" not in said


def test_admin_commands_refuse_a_database_that_is_missing_or_behind(tmp_path: Path) -> None:
    forger = Forger(_config(tmp_path))
    database = tmp_path / "forger.sqlite3"
    for command in ("queue", "stats"):  # what only reads leaves no empty database behind
        said = forger.fails(command)
        assert f"there is no database at {database}: `forger db upgrade` creates it" in said
        assert not database.exists()
    empty = open_engine(f"sqlite:///{database}")  # an empty file, as a failed first start may leave
    empty.connect().close()
    empty.dispose()
    assert "run `forger db upgrade`" in forger.fails("queue")


def test_the_admin_pages_need_a_password_set_and_a_strong_one(forger: Forger, tmp_path: Path) -> None:
    said = forger.fails("admin")
    assert "no admin password is set: `.venv/bin/forger admin set-password` sets one" in said
    for weak in ("short", "password1234", "qwertyuiopasdf"):
        result = forger("admin", "set-password", input=f"{weak}\n{weak}\n")
        assert result.exit_code == 1 and "the admin password" in result.output and "Traceback" not in result.output
    result = forger("admin", "set-password", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0 and "admin password set" in result.output, result.output
    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    try:
        with session_factory(engine).begin() as s:
            stored = admins.password_hash(s, "admin")
    finally:
        engine.dispose()
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored
    assert verify(stored, PASSWORD)


def test_admin_demo_opens_the_last_demos_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    forger = Forger(_config(tmp_path))
    assert "no demo has run here yet (none in demo-output/): `make demo` runs one" in forger.fails("admin", "--demo")
    for name in ("run-20261201-100000", "run-20261202-100000"):  # the later one is the last
        run = tmp_path / "demo-output" / name
        run.mkdir(parents=True)
        engine = open_engine(f"sqlite:///{run / 'forger.sqlite3'}")
        schema.upgrade(engine)
        engine.dispose()
        time.sleep(0.01)
    # Not at a terminal, it says how to set the password instead of asking for one.
    said = forger.fails("admin", "--demo")
    assert "the demo's database has no admin password yet: `.venv/bin/forger admin set-password --demo`" in said
    result = forger("admin", "set-password", "--demo", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "forger.sqlite3").exists()  # the configured database was not touched
    engine = open_engine(f"sqlite:///{run / 'forger.sqlite3'}")
    try:
        with session_factory(engine).begin() as s:
            assert admins.password_hash(s, "admin") is not None
    finally:
        engine.dispose()


def test_stored_data_of_any_shape_prints_with_control_characters_escaped(forger: Forger, tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'forger.sqlite3'}")
    try:
        with session_factory(engine).begin() as s:
            user = users.seen(s, "x", "id-m", "mal\u202eory\x1b[31m[bold]")
            posts.record(s, platform="x", post_ref="8001", author_ref="id-m", author_username=user.username,
                         text="paint\x1b[2J this", outcome=Outcome.QUEUED)
            s.flush()
            job = jobs.enqueue(s, platform="x", post_ref="8001", user_id=user.id, author_username=user.username,
                               content_image=PHOTO, style_image=PAINTING)
            job.options = {"strength": "extreme<script>"}
            job_id = job.id
    finally:
        engine.dispose()
    out = forger.ok("job", str(job_id))
    assert "options (as stored: not options this version knows): strength=extreme<script>" in out
    assert "\x1b" not in out and "\u202e" not in out
    assert "@mal\\u202eory\\x1b[31m[bold]" in out and "paint\\x1b[2J this" in out
    table = forger.ok("queue")
    assert "\x1b" not in table and "\u202e" not in table and "mal\\u202eory" in table and "[bold]" in table
    assert forger.json("job", str(job_id))["options"] == {"strength": "extreme<script>"}
    assert "\u202e" not in forger.ok("user", "mal\u202eory\x1b[31m[bold]")


def test_a_bad_or_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    shipped = (Path(__file__).resolve().parents[2] / "config.yaml").read_text()
    for url, message in [
        ("foo://x/y", "cannot use the database URL 'foo://x/y'"),
        ("mysql://u:secret@127.0.0.1/forger", "'mysql://u:***@127.0.0.1/forger': Forger keeps its data in SQLite or PostgreSQL, not mysql"),
        ("postgresql+nodriver://u@127.0.0.1/db", "cannot use the database URL 'postgresql+nodriver://"),
        # Not parsed by SQLAlchemy, so it cannot hide the password: Forger does.
        ("postgresql://u:secret@127.0.0.1:port/db", "cannot use the database URL 'postgresql://u:***@127.0.0.1:port/db'"),
        # Refused by the settings' own check, before any command runs.
        ("://u:secret@127.0.0.1/db", "database.url must be an SQLAlchemy URL such as sqlite:///data/forger.sqlite3, got: '://u:***@127.0.0.1/db'"),
        ("postgresql+psycopg://u@127.0.0.1:1/db", "the database could not be used: connection failed"),
    ]:
        config = tmp_path / "config.yaml"
        config.write_text(shipped.replace("url: sqlite:///data/forger.sqlite3", f"url: {url}"))
        result = CliRunner().invoke(main, ["--config", str(config), "stats"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def _serve_and_ask(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``forger web`` ARGS as its own process; the status of /admin/login, then what it said."""
    import subprocess
    import sys

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "web", "--port", str(port),
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/admin/login", timeout=5).status_code
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.2)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    return status, out, err


def test_forger_web_serves_the_admin_pages_once_a_password_is_set(forger: Forger) -> None:
    status, out, _ = _serve_and_ask(forger.config)
    assert status == 404 and "admin pages off: no password set" in out
    forger.ok("admin", "set-password", input=f"{PASSWORD}\n{PASSWORD}\n")
    status, out, err = _serve_and_ask(forger.config, "--host", "0.0.0.0")
    assert status == 200 and "/admin/" in out
    # Listening beyond loopback is said, with the hosts the admin pages answer to.
    assert "reachable from other machines; the admin pages answer only to the hosts 127.0.0.1, localhost, ::1" in err
