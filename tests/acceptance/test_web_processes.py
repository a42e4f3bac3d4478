"""``forger web`` in several processes (``web.workers``): all serve one port, one that dies is
started again, and a signal to the first stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.factories import write_config


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s"
        time.sleep(0.1)


def test_forger_web_serves_from_several_processes(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path, web={"workers": 3})
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "web", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        try:
            return requests.get(f"{base}api/v1/gallery", timeout=5).status_code == 200
        except requests.ConnectionError:
            assert process.poll() is None, process.communicate()
            return False

    try:
        _until(lambda: len(_children(process.pid)) == 3 and answers(), "three processes answering")
        first = _children(process.pid)
        os.kill(first[0], signal.SIGKILL)  # one dies: another takes its place, the others serve meanwhile
        _until(lambda: len(_children(process.pid)) == 3 and first[0] not in _children(process.pid), "a new process")
        assert all(requests.get(f"{base}api/v1/gallery", timeout=5).status_code == 200 for _ in range(20))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "in 3 processes" in out and f"web process {first[0]} ended (killed by signal 9)" in err
    assert not any(Path(f"/proc/{pid}").exists() for pid in first[1:])  # stopped, and reaped
