"""Attachments of an item: allowed types, storing uploads, recording them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound, ValidationError
from records.item_models import (
    ItemAttachment,
)
from records.items.core import (
    flush,
    load_row,
)
from records.items.values import (
    AttachmentInfo,
    StoredFile,
)

#: largest attachment accepted, in bytes
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_HEAD = 16  # bytes needed to recognise every allowed type
_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


class AttachmentTooLarge(ValidationError):
    """The upload is larger than :data:`MAX_ATTACHMENT_BYTES`."""

    code = "too_large"


class AttachmentTypeRefused(ValidationError):
    """The file's name or first bytes are not one of the allowed types."""

    code = "unsupported_media_type"


def _prefix(*heads: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(heads)


def _riff(kind: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == kind


def _ftyp(head: bytes) -> bool:
    return head[4:8] == b"ftyp"  # ISO base media: MP4, MOV, M4A, 3GP, HEIC


_OLE = _prefix(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")  # .doc .xls .ppt, WPS Office
_ZIP = _prefix(b"PK\x03\x04")  # OOXML, OpenDocument, OFD (GB/T 33190)
_OGG = _prefix(b"OggS")
_EBML = _prefix(b"\x1a\x45\xdf\xa3")  # Matroska, WebM

#: extension -> (content type, check of the first bytes). The extension picks the type the
#: file is served as; the first bytes must agree, so a renamed executable is refused.
ATTACHMENT_TYPES: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    ".jpg": ("image/jpeg", _prefix(b"\xff\xd8\xff")),
    ".jpeg": ("image/jpeg", _prefix(b"\xff\xd8\xff")),
    ".png": ("image/png", _prefix(b"\x89PNG\r\n\x1a\n")),
    ".gif": ("image/gif", _prefix(b"GIF87a", b"GIF89a")),
    ".webp": ("image/webp", _riff(b"WEBP")),
    ".bmp": ("image/bmp", _prefix(b"BM")),
    ".tif": ("image/tiff", _prefix(b"II*\x00", b"MM\x00*")),
    ".tiff": ("image/tiff", _prefix(b"II*\x00", b"MM\x00*")),
    ".heic": ("image/heic", _ftyp),
    ".pdf": ("application/pdf", _prefix(b"%PDF-")),
    ".ofd": ("application/ofd", _ZIP),
    ".doc": ("application/msword", _OLE),
    ".xls": ("application/vnd.ms-excel", _OLE),
    ".ppt": ("application/vnd.ms-powerpoint", _OLE),
    ".wps": ("application/vnd.ms-works", _OLE),
    ".et": ("application/vnd.ms-excel", _OLE),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ZIP,
    ),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ZIP,
    ),
    ".odt": ("application/vnd.oasis.opendocument.text", _ZIP),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet", _ZIP),
    ".rtf": ("application/rtf", _prefix(b"{\\rtf")),
    ".mp3": ("audio/mpeg", _prefix(b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")),
    ".wav": ("audio/wav", _riff(b"WAVE")),
    ".m4a": ("audio/mp4", _ftyp),
    ".aac": ("audio/aac", _prefix(b"\xff\xf1", b"\xff\xf9")),
    ".amr": ("audio/amr", _prefix(b"#!AMR")),
    ".ogg": ("audio/ogg", _OGG),
    ".opus": ("audio/ogg", _OGG),
    ".flac": ("audio/flac", _prefix(b"fLaC")),
    ".mp4": ("video/mp4", _ftyp),
    ".m4v": ("video/mp4", _ftyp),
    ".mov": ("video/quicktime", _ftyp),
    ".3gp": ("video/3gpp", _ftyp),
    ".webm": ("video/webm", _EBML),
    ".mkv": ("video/x-matroska", _EBML),
    ".avi": ("video/x-msvideo", _riff(b"AVI ")),
}


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def attachment_name(raw: str) -> tuple[str, str]:
    """The display name of an upload (directories dropped) and its content type.

    Raises:
        ValidationError: no usable name.
        AttachmentTypeRefused: the extension is not an allowed type.
    """
    name = _UNSAFE_NAME.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name in (".", ".."):
        raise ValidationError(f"an attachment needs a file name, got {raw[:60]!r}")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) < 10 else name[:200]
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if ext not in ATTACHMENT_TYPES:
        raise AttachmentTypeRefused(
            f"attachment {name!r}: type {ext or '(none)'!r} not allowed; allowed: "
            + " ".join(sorted(ATTACHMENT_TYPES))
        )
    return name, ATTACHMENT_TYPES[ext][0]


def _open_new(folder: Path, ext: str) -> tuple[Path, BinaryIO]:
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        path = folder / (secrets.token_hex(12) + ext)
        try:
            return path, path.open("xb")  # "x": an existing file is never overwritten
        except FileExistsError:
            continue
    raise Conflict(f"could not pick a new file name in {folder}")


def _write(f: BinaryIO, digest: Any, data: bytes) -> None:
    digest.update(data)
    f.write(data)


def _discard(path: Path, f: BinaryIO | None) -> None:
    if f is not None:
        f.close()
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty: the item's first upload failed


async def store_attachment_file(
    directory: Path,
    item_id: str,
    raw_name: str,
    chunks: AsyncIterable[bytes],
    *,
    max_bytes: int = MAX_ATTACHMENT_BYTES,
) -> StoredFile:
    """Write an upload to ``<directory>/<item_id>/<random>.<ext>``, hashing it (SHA-256).

    The name's extension must be an allowed type and the first bytes must agree; file I/O
    and hashing run in a thread. Nothing stays on disk when the upload is refused or fails.

    Raises:
        ValidationError: no name, or an empty file.
        AttachmentTypeRefused: not an allowed type, or the content is not what the name says.
        AttachmentTooLarge: more than ``max_bytes``.
    """
    if not _ITEM_ID.match(item_id):
        raise NotFound(f"no petition item {item_id[:40]!r}")
    name, content_type = attachment_name(raw_name)
    ext = "." + name.rsplit(".", 1)[-1].lower()
    check = ATTACHMENT_TYPES[ext][1]
    digest = hashlib.sha256()
    size = 0
    head = b""
    path: Path | None = None
    f: BinaryIO | None = None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise AttachmentTooLarge(f"attachment {name!r} is larger than {max_bytes} bytes")
            if f is None:
                head += chunk
                if len(head) < _HEAD:
                    continue
                if not check(head):
                    raise AttachmentTypeRefused(
                        f"attachment {name!r}: the content is not {content_type}"
                    )
                path, f = await asyncio.to_thread(_open_new, directory / item_id, ext)
                chunk, head = head, b""
            assert f is not None  # opened above: mypy does not narrow through the tuple
            await asyncio.to_thread(_write, f, digest, chunk)
        if size == 0:
            raise ValidationError(f"attachment {name!r} is empty")
        if f is None:  # shorter than _HEAD bytes
            if not check(head):
                raise AttachmentTypeRefused(
                    f"attachment {name!r}: the content is not {content_type}"
                )
            path, opened = await asyncio.to_thread(_open_new, directory / item_id, ext)
            f = opened
            await asyncio.to_thread(_write, opened, digest, head)
        await asyncio.to_thread(f.close)
    except BaseException:
        if path is not None:
            await asyncio.to_thread(_discard, path, f)
        raise
    assert path is not None
    return StoredFile(
        item_id=item_id,
        name=name,
        relative_path=f"{item_id}/{path.name}",
        content_type=content_type,
        size=size,
        sha256=digest.hexdigest(),
    )


async def discard_attachment_file(directory: Path, stored: StoredFile) -> None:
    """Remove a stored file that could not be recorded."""
    await asyncio.to_thread(_discard, directory / stored.relative_path, None)


def _attachment_info(row: ItemAttachment) -> AttachmentInfo:
    return AttachmentInfo(
        id=row.id,
        item_id=row.item_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        added_by=row.added_by,
        added_at=row.added_at,
        relative_path=row.path,
    )


async def add_attachment(
    session: AsyncSession, stored: StoredFile, *, account_id: int | None
) -> AttachmentInfo:
    """Record a stored file as an attachment of its item."""
    await load_row(session, stored.item_id)
    row = ItemAttachment(
        item_id=stored.item_id,
        name=stored.name,
        path=stored.relative_path,
        sha256=stored.sha256,
        size=stored.size,
        content_type=stored.content_type,
        added_by=account_id,
    )
    session.add(row)
    await flush(session, f"attach {stored.name!r} to item {stored.item_id}")
    return _attachment_info(row)


async def list_attachments(session: AsyncSession, item_id: str) -> list[AttachmentInfo]:
    """The attachments of an item, oldest first."""
    await load_row(session, item_id)
    rows = (
        await session.scalars(
            select(ItemAttachment)
            .where(ItemAttachment.item_id == item_id)
            .order_by(ItemAttachment.id)
        )
    ).all()
    return [_attachment_info(r) for r in rows]


async def get_attachment(session: AsyncSession, item_id: str, attachment_id: int) -> AttachmentInfo:
    """One attachment of an item (another item's attachment id is not found)."""
    row = await session.get(ItemAttachment, attachment_id)
    if row is None or row.item_id != item_id:
        raise NotFound(f"item {item_id} has no attachment {attachment_id}")
    return _attachment_info(row)
