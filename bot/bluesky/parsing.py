"""Bluesky's JSON into the core's ``Post`` and ``Media``, and the moments its cursors are made of.

A post's id is its ``at://`` URI; its author's id the DID, the username the handle. Its photos
are the blobs of an ``app.bsky.embed.images`` embed, or of the media of a
``app.bsky.embed.recordWithMedia`` (a quote post with photos); a video is a ``video`` medium (not
painted). A photo is addressed by the author's DID and the blob's CID: ``Media.url`` is the
``com.atproto.sync.getBlob`` query that fetches it from the author's PDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bot.platform import Media, Post

IMAGES = "app.bsky.embed.images"
VIDEO = "app.bsky.embed.video"
RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"
POST = "app.bsky.feed.post"


def moment(stamp: str) -> float:
    """Epoch seconds of an RFC 3339 time as Bluesky writes them ("2024-05-01T12:00:00.123Z")."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stamp(epoch: float) -> str:
    """The RFC 3339 time (UTC, milliseconds) of ``epoch``, as Bluesky writes them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def blob_url(did: str, cid: str) -> str:
    return "com.atproto.sync.getBlob?" + urlencode({"did": did, "cid": cid})


def blob_of(media: Media) -> tuple[str, str]:
    """(DID, CID) of a photo ``post`` made."""
    query = parse_qs(urlsplit(media.url or "").query)
    return query["did"][0], query["cid"][0]


def post(uri: str, author: Mapping[str, Any], record: Mapping[str, Any], *,
         parent_media_keys: tuple[str, ...] = ()) -> Post:
    """The core's post for record ``record`` at ``uri`` by ``author`` (a profile view)."""
    did = str(author.get("did") or uri.removeprefix("at://").split("/")[0])
    reply = record.get("reply")
    parent = reply.get("parent", {}).get("uri") if isinstance(reply, dict) else None
    created = record.get("createdAt")
    try:
        created_at = datetime.fromtimestamp(moment(created), UTC) if isinstance(created, str) else None
    except ValueError:
        created_at = None
    return Post(
        id=uri, text=str(record.get("text") or ""), author_id=did, author_username=str(author.get("handle") or did),
        created_at=created_at, media=media(did, record.get("embed")), is_repost=False,
        in_reply_to_id=parent, parent_media_keys=parent_media_keys,
    )


def media(did: str, embed: Any) -> tuple[Media, ...]:
    """The media of a post's embed (its record's, not the AppView's view of it)."""
    if not isinstance(embed, dict):
        return ()
    kind = embed.get("$type")
    if kind == RECORD_WITH_MEDIA:
        return media(did, embed.get("media"))
    if kind == IMAGES:
        found = []
        for image in embed.get("images") or []:
            cid = _cid(image.get("image") if isinstance(image, dict) else None)
            if cid:
                found.append(Media(media_key=cid, type="photo", url=blob_url(did, cid), width=None, height=None))
        return tuple(found)
    if kind == VIDEO:
        cid = _cid(embed.get("video")) or "video"
        return (Media(media_key=cid, type="video", url=None, width=None, height=None),)
    return ()  # a link card, a quoted post: nothing to paint


def root_and_parent(view: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The ``reply`` refs of a reply to the post ``view`` (a post view: uri, cid, record)."""
    parent = {"uri": str(view["uri"]), "cid": str(view["cid"])}
    reply = view.get("record", {}).get("reply")
    root = reply.get("root") if isinstance(reply, dict) else None
    if isinstance(root, dict) and root.get("uri") and root.get("cid"):
        return {"root": {"uri": str(root["uri"]), "cid": str(root["cid"])}, "parent": parent}
    return {"root": parent, "parent": parent}


def _cid(blob: Any) -> str | None:
    """The CID of a blob ref, in its current form (``ref.$link``) or the legacy one (``cid``)."""
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    if isinstance(ref, dict) and isinstance(ref.get("$link"), str):
        return str(ref["$link"])
    return str(blob["cid"]) if isinstance(blob.get("cid"), str) else None
