"""Attachments of an item: upload, list, download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, Field

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
from web.items.wire import ATTACHMENT_CONTENT_TYPES, Attachment, Attachments
from web.rest import BINARY, ItemPath, operation, reply

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


_UPLOAD_CHUNK = 256 * 1024


class FilenameQuery(BaseModel):
    """``?filename=`` of a raw upload."""

    filename: Annotated[str | None, Field(min_length=1, max_length=300)] = None


class AttachmentPath(ItemPath):
    """``{item_id}`` and ``{attachment_id}``."""

    attachment_id: Annotated[int, Field(ge=1)]


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
@operation(
    "Attach a file: multipart part 'file', or the raw body with ?filename=. Images, PDF, OFD, "
    "office documents, audio, video; at most 20 MiB; 413 too large, 415 type not allowed or "
    "content not matching the name, 422 empty",
    tag="attachments",
    response=Attachment,
    status=201,
    path=ItemPath,
    query=FilenameQuery,
    body_media={
        "multipart/form-data": {
            "type": "object",
            "properties": {"file": BINARY},
            "required": ["file"],
        },
        "application/octet-stream": BINARY,
    },
)
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
    # aiohttp's multipart reader on a malformed body: ValueError, or a header it cannot parse
    except (ValueError, HttpProcessingError) as exc:
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
    return reply(Attachment.of(info), status=201)


@routes.get("/api/items/{item_id}/attachments")
@operation(
    "The item's attachments (audit-logged)",
    tag="attachments",
    response=Attachments,
    path=ItemPath,
)
async def list_attachments(request: web.Request) -> web.Response:
    """The item's attachments; audit-logged like every read of the item."""
    p, item = await load_item(request, Action.VIEW_ITEM)
    async with request.app[keys.STORE].transaction() as tx:
        found = await items.list_attachments(tx, item.id)
        await accounts.audit(
            tx, p.ref, "view_item_attachments", "item", item.id, remote=remote_of(request)
        )
    return reply(Attachments(attachments=[Attachment.of(a) for a in found]))


@routes.get("/api/items/{item_id}/attachments/{attachment_id}")
@operation(
    "Download an attachment (audit-logged; confidential items: handlers only)",
    tag="attachments",
    path=AttachmentPath,
    media={t: BINARY for t in ATTACHMENT_CONTENT_TYPES},
    description="the file, Content-Disposition: attachment",
)
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
