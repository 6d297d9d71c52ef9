"""Attachments over HTTP: upload (multipart and raw), list, download; refusals write nothing."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from records import accounts
from records.items import MAX_ATTACHMENT_BYTES
from tests.api.items_api_support import register
from tests.helpers import Api
from web import keys

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.7\n" + "信访材料".encode() * 5000 + b"\n%%EOF\n"


def _dir(api: Api, item_id: str) -> Path:
    return Path(api.app[keys.SETTINGS].data_dir) / "attachments" / item_id


def _files(api: Api, item_id: str) -> list[Path]:
    folder = _dir(api, item_id)
    return sorted(folder.iterdir()) if folder.exists() else []


async def _upload_raw(
    api: Api, headers: dict[str, str], item_id: str, name: str, data: bytes
) -> aiohttp.ClientResponse:
    return await api.client.post(
        f"/api/upload/items/{item_id}/attachments",
        params={"filename": name},
        data=io.BytesIO(data),  # raw bytes this large would be sent from the event loop
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


async def test_items_api_attachments_upload_list_download(api: Api) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-DFJD-HPSQ")
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="../../来信扫描.pdf", content_type="application/pdf")
    resp = await api.client.post(
        f"/api/upload/items/{item['id']}/attachments", data=form, headers=reception
    )
    assert resp.status == 201, await resp.text()
    pdf = await resp.json()
    assert pdf["name"] == "来信扫描.pdf"  # directories dropped from the name
    assert (pdf["content_type"], pdf["size"]) == ("application/pdf", len(PDF))
    assert pdf["sha256"] == hashlib.sha256(PDF).hexdigest()
    # the same bytes again under the same name: a second file, the first one untouched
    resp = await _upload_raw(api, reception, item["id"], "来信扫描.pdf", PDF)
    assert resp.status == 201, await resp.text()
    again = await resp.json()
    resp = await _upload_raw(api, reception, item["id"], "现场照片.PNG", PNG)
    assert resp.status == 201, await resp.text()
    png = await resp.json()
    assert png["content_type"] == "image/png"

    files = _files(api, item["id"])
    assert len(files) == 3
    assert sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files) == sorted(
        [pdf["sha256"], again["sha256"], png["sha256"]]
    )

    dongfeng = await api.login("dongfeng")  # the sub-district above the community
    resp = await api.client.get(f"/api/items/{item['id']}/attachments", headers=dongfeng)
    assert resp.status == 200
    listed = (await resp.json())["attachments"]
    assert [a["id"] for a in listed] == [pdf["id"], again["id"], png["id"]]
    resp = await api.client.get(
        f"/api/items/{item['id']}/attachments/{pdf['id']}", headers=dongfeng
    )
    assert resp.status == 200
    assert await resp.read() == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    assert "%E6%9D%A5%E4%BF%A1" in resp.headers["Content-Disposition"]  # 来信
    async with api.seed.store.transaction() as tx:
        downloads = await accounts.audit_entries(
            tx, action="download_attachment", object_id=item["id"]
        )
        uploads = await accounts.audit_entries(tx, action="attachment_upload", object_id=item["id"])
    assert [(d.actor, d.detail["attachment"]) for d in downloads] == [
        (f"account:{api.seed.account_ids['dongfeng']}", pdf["id"])
    ]
    assert len(uploads) == 3

    # another sub-district may neither list nor download, and the refusal is logged
    hehua = await api.login("hehua")
    for path in ("", f"/{pdf['id']}"):
        resp = await api.client.get(f"/api/items/{item['id']}/attachments{path}", headers=hehua)
        assert resp.status == 403
    resp = await _upload_raw(api, hehua, item["id"], "x.png", PNG)
    assert resp.status == 403
    # an attachment id of another item is not found through this item
    other = await register(api, reception, "QX-DFJD-HPSQ")
    resp = await api.client.get(
        f"/api/items/{other['id']}/attachments/{pdf['id']}", headers=reception
    )
    assert resp.status == 404
    assert len(_files(api, item["id"])) == 3


async def test_items_api_attachments_of_a_confidential_item_are_for_its_handlers(
    api: Api,
) -> None:
    reception = await api.login("reception")
    secret = await register(
        api,
        reception,
        "QX-XFJ-JDZX",
        type="accusation",
        request="举报某干部收受贿赂",
        subject_unit_id=api.seed.units["QX-DFJD"],
    )
    resp = await _upload_raw(api, reception, secret["id"], "证据.png", PNG)
    assert resp.status == 201, await resp.text()
    att = await resp.json()
    leader = await api.login("leader")  # the whole district, but not a handler (Art. 30)
    for path in ("", f"/{att['id']}"):
        resp = await api.client.get(f"/api/items/{secret['id']}/attachments{path}", headers=leader)
        assert resp.status == 403, path
    resp = await api.client.get(
        f"/api/items/{secret['id']}/attachments/{att['id']}", headers=reception
    )
    assert resp.status == 200
    assert await resp.read() == PNG


async def test_items_api_attachments_bad_uploads_are_refused_and_write_nothing(
    api_sqlite: Api,
) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    item = await register(api, reception, "QX-DFJD-HPSQ")
    cases = [
        ("too large", "big.pdf", b"%PDF-" + b"0" * MAX_ATTACHMENT_BYTES, 413),
        ("type not allowed", "tool.exe", b"MZ\x90\x00" + b"\x00" * 100, 415),
        ("no extension", "README", b"hello world, this is text", 415),
        ("content is not what the name says", "photo.jpg", b"MZ\x90\x00" * 100, 415),
        ("a short file that is not a PDF", "a.pdf", b"%PD", 415),
        ("empty", "empty.pdf", b"", 422),
    ]
    for what, name, data, status in cases:
        resp = await _upload_raw(api, reception, item["id"], name, data)
        assert resp.status == status, (what, await resp.text())
        body = await resp.json()
        assert body["error"]["message"], what
    # a multipart form without the 'file' part, and a raw body without a name
    form = aiohttp.FormData()
    form.add_field("other", b"%PDF-1.4 x", filename="a.pdf")
    resp = await api.client.post(
        f"/api/upload/items/{item['id']}/attachments", data=form, headers=reception
    )
    assert resp.status == 422
    resp = await api.client.post(
        f"/api/upload/items/{item['id']}/attachments",
        data=PDF,
        headers={**reception, "Content-Type": "application/octet-stream"},
    )
    assert resp.status == 422
    # a multipart part whose header line is not a header (found by the fuzzer): 422, not 500
    resp = await api.client.post(
        f"/api/upload/items/{item['id']}/attachments",
        data=b"--XX\r\nno colon in this header\r\n\r\n%PDF-1.4\r\n--XX--\r\n",
        headers={**reception, "Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert resp.status == 422, await resp.text()
    assert "malformed upload" in (await resp.json())["error"]["message"]
    # a too-large upload sent in chunks (no Content-Length) is cut off while reading

    async def chunks() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(MAX_ATTACHMENT_BYTES // (1 << 20) + 1):
            yield b"x" * (1 << 20)

    resp = await api.client.post(
        f"/api/upload/items/{item['id']}/attachments",
        params={"filename": "streamed.pdf"},
        data=chunks(),
        headers={**reception, "Content-Type": "application/octet-stream"},
    )
    assert resp.status == 413, await resp.text()
    assert _files(api, item["id"]) == []
    assert not _dir(api, item["id"]).exists()
    resp = await api.client.get(f"/api/items/{item['id']}/attachments", headers=reception)
    assert (await resp.json())["attachments"] == []
    # exactly the limit is accepted
    data = b"%PDF-" + b"0" * (MAX_ATTACHMENT_BYTES - 5)
    resp = await _upload_raw(api, reception, item["id"], "max.pdf", data)
    assert resp.status == 201, await resp.text()
    assert [f.stat().st_size for f in _files(api, item["id"])] == [MAX_ATTACHMENT_BYTES]
