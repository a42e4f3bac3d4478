"""A client of the web API (``forger submit``): send a photo and a painting, follow the painting
over its event stream, save the picture. Plain ``requests``; a refusal is a ``ClientError`` with
the API's code and message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from bot.errors import ForgerError

FINISHED = ("done", "failed", "cancelled")
Status = dict[str, Any]


class ClientError(ForgerError):
    """The server refused, or could not be reached; ``code`` is the API's (or "unreachable")."""

    def __init__(self, message: str, *, code: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


class Client:
    def __init__(self, server: str, *, key: str | None = None, timeout_s: float = 60.0) -> None:
        self.server = server.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if key:
            self.http.headers["Authorization"] = f"Bearer {key}"

    def submit(self, photo: Path, painting: str | Path, *, strength: str = "normal", keep_colours: bool = False,
               faces: bool = True, size: int | None = None) -> Status:
        """Queue ``photo`` painted like ``painting`` (a file, or a gallery painting's name)."""
        data: dict[str, str] = {"strength": strength, "keep_colours": str(keep_colours).lower(),
                                "faces": str(faces).lower()}
        if size is not None:
            data["size"] = str(size)
        files: dict[str, tuple[str, bytes]] = {"photo": (photo.name, photo.read_bytes())}
        if isinstance(painting, Path):
            files["painting"] = (painting.name, painting.read_bytes())
        else:
            data["painting_name"] = painting
        return self._json(self._call("POST", f"{self.server}api/v1/paintings", data=data, files=files))

    def status(self, url: str) -> Status:
        return self._json(self._call("GET", url))

    def follow(self, status: Status, on_status: Callable[[Status], None]) -> Status:
        """Follow a painting until it ends, over its event stream (by polling if the stream breaks)."""
        on_status(status)
        while status["state"] not in FINISHED:
            try:
                for status in self._events(status["links"]["events"]):
                    on_status(status)
            except requests.RequestException:
                time.sleep(1.0)  # the stream broke: ask once, then listen again
                status = self.status(status["links"]["status"])
                on_status(status)
        return status

    def fetch(self, url: str) -> bytes:
        return self._call("GET", url).content

    def _events(self, url: str) -> Iterator[Status]:
        with self.http.get(url, stream=True, timeout=self.timeout_s,
                           headers={"Accept": "text/event-stream"}) as response:
            self._check(response)
            event, data = "message", []
            for line in response.iter_lines(decode_unicode=True):
                if line == "":
                    if event == "status" and data:
                        yield json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.http.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise ClientError(f"could not reach {self.server}: {exc}", code="unreachable") from exc
        self._check(response)
        return response

    @staticmethod
    def _check(response: requests.Response) -> None:
        if response.ok:
            return
        try:
            error = response.json()["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", f"the server answered HTTP {response.status_code}"
        retry = response.headers.get("Retry-After")
        suffix = f" (try again in {retry} s)" if retry else ""
        raise ClientError(f"{message}{suffix}", code=code,
                          retry_after_s=float(retry) if retry and retry.isdigit() else None)

    @staticmethod
    def _json(response: requests.Response) -> Status:
        data: Status = response.json()
        return data
