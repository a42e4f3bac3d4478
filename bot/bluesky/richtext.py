"""A reply's text as Bluesky takes it: at most 300 graphemes (and 3000 bytes), and facets that
make ``@handle`` a real mention (byte offsets into the UTF-8 text, not character offsets)."""

from __future__ import annotations

import regex

MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MENTION = "app.bsky.richtext.facet#mention"


def clip(text: str, limit: int = MAX_GRAPHEMES) -> str:
    """``text`` cut to ``limit`` graphemes (a flag or an accented letter counts once), "…" marking a cut."""
    graphemes = regex.findall(r"\X", text)
    if len(graphemes) <= limit and len(text.encode()) <= MAX_BYTES:
        return text
    kept = graphemes[: limit - 1]
    while len("".join(kept).encode()) + len("…".encode()) > MAX_BYTES:
        kept.pop()
    return "".join(kept) + "…"


def mention_facets(text: str, handles: dict[str, str]) -> list[dict]:
    """A mention facet for each ``@handle`` of ``handles`` (handle -> DID) written in ``text``."""
    facets = []
    for handle, did in handles.items():
        for found in regex.finditer(rf"(?<![\w.@-])@{regex.escape(handle)}(?![\w-]|\.\w)", text, flags=regex.IGNORECASE):
            start = len(text[: found.start()].encode())
            facets.append({
                "index": {"byteStart": start, "byteEnd": start + len(found.group().encode())},
                "features": [{"$type": MENTION, "did": did}],
            })
    return sorted(facets, key=lambda f: f["index"]["byteStart"])
