"""Attachments of an item: upload, list, download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from config.errors import NotFound, ValidationError
from records import accounts, items
from records.policy import Action
from records.text import unstorable_char
from web import keys
from web.auth import remote_of
from web.errors import error_response
from web.items.common import (
    MAX_ID,
    load_item,
)

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


_UPLOAD_CHUNK = 256 * 1024


def attachment_json(a: items.AttachmentInfo) -> dict[str, Any]:
    """The wire form of an attachment (no server path)."""
    return {
        "id": a.id,
        "item_id": a.item_id,
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "added_by": a.added_by,
        "added_at": a.added_at.isoformat(),
    }


def _attachments_dir(request: web.Request) -> Path:
    return request.app[keys.SETTINGS].data_dir / "attachments"


async def _upload_source(request: web.Request) -> tuple[str, AsyncIterator[bytes]]:
    """The uploaded file's name and its bytes, from a multipart form or a raw body."""
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (
                isinstance(part, BodyPartReader) and part.name == "file" and part.filename
            ):
                part = await reader.next()
        except (ValueError, AssertionError, KeyError) as exc:
            raise ValidationError(f"malformed multipart body: {exc}") from exc
        if part is None:
            raise ValidationError("multipart body has no part 'file' with a filename")
        file_part = part

        async def parts() -> AsyncIterator[bytes]:
            while chunk := await file_part.read_chunk(_UPLOAD_CHUNK):
                yield chunk

        # aiohttp's client (and some others) percent-encode the name; browsers send UTF-8
        name = unquote(file_part.filename or "")
        bad = unstorable_char(name, "the file name")
        if bad is not None:
            raise ValidationError(str(bad))
        return name, parts()
    name = request.query.get("filename", "")
    if not name:
        raise ValidationError("a raw upload needs the query parameter 'filename'")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(_UPLOAD_CHUNK):
            yield chunk

    return name, body()


@routes.post("/api/upload/items/{item_id}/attachments")
async def upload_attachment(request: web.Request) -> web.Response:
    """Attach a file (multipart part ``file``, or the raw body with ``?filename=``).

    Images, PDF/OFD, office documents, audio and video up to 20 MiB; the type is checked
    against the file's first bytes. A refused upload leaves nothing on disk or in the records.
    """
    p, item = await load_item(request, Action.EDIT_ITEM)
    limit = items.MAX_ATTACHMENT_BYTES
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        # (multipart framing adds a little; the file itself is counted while reading)
        return error_response(413, "too_large", f"attachments are limited to {limit} bytes")
    directory = _attachments_dir(request)
    try:
        name, chunks = await _upload_source(request)
        stored = await items.store_attachment_file(directory, item.id, name, chunks)
    except items.AttachmentTooLarge as exc:
        return error_response(413, exc.code, str(exc))
    except items.AttachmentTypeRefused as exc:
        return error_response(415, exc.code, str(exc))
    except ValueError as exc:  # aiohttp's multipart reader on a malformed body
        raise ValidationError(f"malformed upload: {exc}") from exc
    try:
        async with request.app[keys.STORE].transaction() as tx:
            info = await items.add_attachment(tx, stored, account_id=p.account_id)
            await accounts.audit(
                tx,
                p.ref,
                "attachment_upload",
                "item",
                item.id,
                remote=remote_of(request),
                detail={"attachment": info.id, "name": info.name, "sha256": info.sha256},
            )
    except BaseException:
        await asyncio.shield(items.discard_attachment_file(directory, stored))
        raise
    return web.json_response(attachment_json(info), status=201)


@routes.get("/api/items/{item_id}/attachments")
async def list_attachments(request: web.Request) -> web.Response:
    """The item's attachments; audit-logged like every read of the item."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_attachments(tx, item.id)
        await accounts.audit(
            tx, p.ref, "view_item_attachments", "item", item.id, remote=remote_of(request)
        )
    return web.json_response({"attachments": [attachment_json(a) for a in found]})


@routes.get("/api/items/{item_id}/attachments/{attachment_id}")
async def download_attachment(request: web.Request) -> web.StreamResponse:
    """The file, as an attachment download; scope-checked like the item and audit-logged."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    raw_id = request.match_info["attachment_id"]
    if not raw_id.isdigit() or int(raw_id) > MAX_ID:
        raise NotFound(f"item {item.id} has no attachment {raw_id[:20]!r}")
    async with request.app[keys.STORE].transaction() as tx:
        info = await items.get_attachment(tx, item.id, int(raw_id))
        await accounts.audit(
            tx,
            p.ref,
            "download_attachment",
            "item",
            item.id,
            remote=remote_of(request),
            detail={"attachment": info.id, "name": info.name},
        )
    path = _attachments_dir(request) / info.relative_path
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"attachment {info.id} of item {item.id}: the file is missing")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": info.content_type,
            "Content-Disposition": "attachment; filename*=UTF-8''" + quote(info.name, safe=""),
            "X-Content-Type-Options": "nosniff",
        },
    )
