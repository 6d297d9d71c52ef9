"""Helpers of the items API tests: registering and moving items over HTTP."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api

PHONE = "13800138000"


def item_body(api: Api, unit: str, **over: Any) -> dict[str, Any]:
    """A registration body for a named complaint registered by ``unit`` (a unit code)."""
    body: dict[str, Any] = {
        "registering_unit_id": api.seed.units[unit],
        "type": "complaint",
        "channel": "visit",
        "request": "请求解决小区加装电梯补贴问题",
        "facts": "小区2019年加装电梯，补贴至今未发放",
        "category": "城乡建设",
        "petitioners": [
            {
                "name": "张三",
                "id_number": "110101195001011234",
                "phone": PHONE,
                "address": "和平路1号",
            }
        ],
    }
    body.update(over)
    return body


async def register(api: Api, headers: dict[str, str], unit: str, **over: Any) -> dict[str, Any]:
    """Register an item over HTTP; returns the item."""
    resp = await api.client.post("/api/items", json=item_body(api, unit, **over), headers=headers)
    assert resp.status == 201, await resp.text()
    item: dict[str, Any] = (await resp.json())["item"]
    return item


async def act(
    api: Api, headers: dict[str, str], item_id: str, action: str, status: int = 200, **body: Any
) -> dict[str, Any]:
    """POST a lifecycle action and check the status; returns the answer."""
    resp = await api.client.post(f"/api/items/{item_id}/{action}", json=body, headers=headers)
    assert resp.status == status, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer
