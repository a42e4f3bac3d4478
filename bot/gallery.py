"""The gallery: public-domain paintings a user can ask for by name instead of sending one.

The bundled paintings live in ``bot/paintings/`` with their labels in ``paintings.yaml``; more
folders of the same shape can be added in the config (``gallery.extra_dirs``). A painting is
found in a post by any of its names, without regard to case, accents or punctuation; a name
the gallery does not know gets the closest ones suggested. A lone photo gets a painting picked
at random, as DeepForger did, seeded by the post so that a mention read twice gets the same.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, MediaError
from bot.media import check_photo

BUNDLED = Path(__file__).resolve().parent / "paintings"
LABELS = "paintings.yaml"


def normalize(text: str) -> str:
    """Lower case, no accents, words separated by single spaces: how names are compared."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


@dataclass(frozen=True)
class Painting:
    """One painting of the gallery and its museum label."""

    path: Path
    title: str
    artist: str
    year: str
    names: tuple[str, ...]  # normalized, the title's first

    @property
    def nickname(self) -> str:
        """The short name people use, e.g. "starry night": the label's first, else the title."""
        return self.names[1] if len(self.names) > 1 else self.names[0]

    @property
    def credit(self) -> str:
        """The line a reply carries, e.g. "after The Starry Night, Vincent van Gogh, 1889"."""
        return f"after {self.title}, {self.artist}, {self.year}"

    def image(self) -> bytes:
        """The painting's encoded image."""
        return self.path.read_bytes()


class Gallery:
    """The paintings the bot knows by name."""

    def __init__(self, paintings: Sequence[Painting]) -> None:
        if not paintings:
            raise ConfigError("the gallery is empty: it needs at least one painting")
        self.paintings = tuple(paintings)
        self._by_name = {name: p for p in self.paintings for name in p.names}
        self._digests: dict[str, Painting] | None = None

    @classmethod
    def load(cls, extra_dirs: Sequence[Path | str] = ()) -> Gallery:
        """The bundled paintings and those in ``extra_dirs`` (each with its own paintings.yaml)."""
        return _load(tuple(Path(d) for d in extra_dirs))

    def find(self, text: str) -> Painting | None:
        """The painting ``text`` names anywhere in it (the longest name wins), or None."""
        padded = f" {normalize(text)} "
        named = [name for name in self._by_name if f" {name} " in padded]
        return self._by_name[max(named, key=len)] if named else None

    def named(self, name: str) -> Painting | None:
        """The painting called exactly ``name`` (normalized), or None."""
        return self._by_name.get(normalize(name))

    def closest(self, name: str, *, limit: int = 2) -> list[Painting]:
        """The paintings whose names are most like ``name``; empty when none is close."""
        found = difflib.get_close_matches(normalize(name), list(self._by_name), n=limit * 3, cutoff=0.6)
        return list(dict.fromkeys(self._by_name[n] for n in found))[:limit]

    def pick(self, seed: str) -> Painting:
        """A painting at random; the same ``seed`` (a post id) always gets the same one."""
        return random.Random(seed).choice(self.paintings)

    def by_image(self, data: bytes) -> Painting | None:
        """The painting whose image is exactly ``data``: how a job's credit is found again."""
        if self._digests is None:
            self._digests = {hashlib.sha256(p.image()).hexdigest(): p for p in self.paintings}
        return self._digests.get(hashlib.sha256(data).hexdigest())


def _load(extra_dirs: tuple[Path, ...]) -> Gallery:
    paintings = [p for folder in (BUNDLED, *extra_dirs) for p in _read_folder(folder)]
    return Gallery(paintings)


def _read_folder(folder: Path) -> list[Painting]:
    """The paintings a folder's paintings.yaml lists; ConfigError naming the file and entry."""
    labels = folder / LABELS
    try:
        entries = yaml.safe_load(labels.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"gallery folder {folder} has no {LABELS}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{labels}: not valid YAML: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError(f"{labels}: must be a list of paintings, got: {entries!r}")
    return [_painting(folder, labels, n, entry) for n, entry in enumerate(entries, start=1)]


def _painting(folder: Path, labels: Path, number: int, entry: Any) -> Painting:
    where = f"{labels}: painting {number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with file, title, artist and year, got: {entry!r}")
    values: dict[str, str] = {}
    for key in ("file", "title", "artist", "year"):
        value = entry.get(key)
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
            raise ConfigError(f"{where}: {key} must be a non-empty string, got: {value!r}")
        values[key] = str(value).strip()
    unknown = sorted(set(entry) - {"file", "title", "artist", "year", "names"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]} (known: file, title, artist, year, names)")
    names = entry.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and normalize(n) for n in names):
        raise ConfigError(f"{where}: names must be a list of names, got: {names!r}")
    path = folder / values["file"]
    try:
        check_photo(path.read_bytes(), claimed=None, max_pixels=100_000_000, min_side=1, name=str(path))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from exc
    except MediaError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    all_names = dict.fromkeys(normalize(n) for n in [values["title"], *names])
    return Painting(path, values["title"], values["artist"], values["year"], tuple(all_names))
