"""The admin password: a policy for choosing one, and its scrypt hash, the only form it is kept in.

A hash is ``scrypt$N$r$p$salt$digest`` (salt and digest in base64), written by ``forger admin
set-password`` into the database. Checking a guess costs the same whatever the guess, and the
same when no password is stored at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from functools import lru_cache
from pathlib import Path

from bot.errors import ForgerError

MIN_LENGTH = 12
COMMON = Path(__file__).with_name("common-passwords.txt")
# scrypt's interactive-login cost (RFC 7914): about 50 ms and 16 MiB per try.
N, R, P = 2**14, 8, 1


class WeakPassword(ForgerError):
    """A password the policy refuses; the message says why."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_policy(password: str) -> None:
    """Raise WeakPassword unless ``password`` is at least 12 characters and not a common one
    (nor a common one with digits or symbols added, nor one repeated)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the admin password must have at least {MIN_LENGTH} characters, it has {len(password)}")
    lowered = password.lower().strip()
    common = common_passwords()
    stem = re.sub(r"[\W\d_]+$", "", re.sub(r"^[\W\d_]+", "", lowered))
    repeated = re.fullmatch(r"(.+?)\1+", lowered)
    # A common one with a few characters added ("qwertyuiop" + "asdf") is hardly stronger.
    padded = any(len(lowered) - len(p) < 6 and p in lowered for p in common if len(p) >= 6)
    if (lowered in common or (len(stem) >= 4 and stem in common) or (repeated and repeated.group(1) in common)
            or padded or len(set(lowered)) < 5 or lowered.isdigit()):
        raise WeakPassword("the admin password is too common (it is on the list of the most used passwords, "
                           "or nearly): choose a longer phrase of your own")


def hash_password(password: str) -> str:
    """``password``'s scrypt hash with a fresh random salt, as stored."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


@lru_cache(maxsize=1)
def _nothing() -> str:
    """Checked against when no hash is stored, so that the answer takes as long as a real check."""
    return hash_password(os.urandom(16).hex())


def verify(stored: str | None, guess: str) -> bool:
    """Does ``guess`` match the ``stored`` hash? Constant-time; False (after the same work) when
    nothing, or something unreadable, is stored."""
    try:
        kind, n, r, p, salt, digest = (stored or _nothing()).split("$")
        if kind != "scrypt":
            raise ValueError(kind)
        params = int(n), int(r), int(p)
        expected = base64.b64decode(digest, validate=True)
        salt_bytes = base64.b64decode(salt, validate=True)
    except ValueError:
        stored, (kind, n, r, p, salt, digest) = None, _nothing().split("$")
        params, expected, salt_bytes = (N, R, P), base64.b64decode(digest), base64.b64decode(salt)
    found = hashlib.scrypt(guess.encode(errors="surrogatepass"), salt=salt_bytes, n=params[0], r=params[1],
                           p=params[2], dklen=len(expected), maxmem=64 * 1024 * 1024)
    return hmac.compare_digest(found, expected) and stored is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
