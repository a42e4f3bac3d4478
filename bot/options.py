"""Render options a user can write in a mention, and how they travel with a job.

In the post's text, anywhere, in any case (``help`` lists them):

- ``strength low``, ``strength normal``, ``strength high`` (or ``low strength``, ``high strength``):
  how strongly the painting's style is laid on;
- ``keep colours`` (or ``keep colors``): keep the photo's own colours, take only the brushwork;
- ``faces off``: no special care for faces (by default they are kept recognisable).

``RenderOptions`` is what the poller stores on a request; ``to_json``/``from_json`` carry it on a
job as a small JSON object, and the renderer reads it from there.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from bot.gallery import normalize


class Strength(str, enum.Enum):
    """How strongly the style is applied: a weight on the style loss, chosen by the renderer."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True)
class RenderOptions:
    """What a user asked for besides the two images; the defaults are what nobody asking gets."""

    strength: Strength = Strength.NORMAL
    keep_colours: bool = False
    protect_faces: bool = True  # False after "faces off"
    size: int | None = None  # the picture's longest side in pixels, asked on the web (None: the configured)

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the job, e.g. {"strength": "high", "keep_colours": false, "protect_faces": true}."""
        data: dict[str, Any] = {
            "strength": self.strength.value, "keep_colours": self.keep_colours, "protect_faces": self.protect_faces,
        }
        if self.size is not None:
            data["size"] = self.size
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RenderOptions:
        """Read back ``to_json``; missing keys (older jobs) take the defaults."""
        data = data or {}
        return cls(
            strength=Strength(data.get("strength", Strength.NORMAL.value)),
            keep_colours=bool(data.get("keep_colours", False)),
            protect_faces=bool(data.get("protect_faces", True)),
            size=int(data["size"]) if data.get("size") is not None else None,
        )


_STRENGTH = re.compile(r"\bstrength (low|normal|high)\b|\b(low|normal|high) strength\b")
# "keep (the/my) (original) colours", and its negation ("don't keep colours": normalised, "don t").
_KEEP_COLOURS = re.compile(r"\b(?P<no>don t |dont |do not )?keep (?:the |my )?(?:original )?colou?rs?\b")
_FACES_OFF = re.compile(r"\bfaces? off\b|\bno faces?\b")


def parse_options(text: str) -> tuple[RenderOptions, str]:
    """The options written in ``text``, and the (normalized) text with them taken out."""
    plain = normalize(text)
    strength = Strength.NORMAL
    if found := _STRENGTH.search(plain):
        strength = Strength(found[1] or found[2])
    keep_colours = (keep := _KEEP_COLOURS.search(plain)) is not None and not keep["no"]
    protect_faces = not _FACES_OFF.search(plain)
    for pattern in (_STRENGTH, _KEEP_COLOURS, _FACES_OFF):
        plain = pattern.sub(" ", plain)
    return RenderOptions(strength, keep_colours, protect_faces), " ".join(plain.split())
