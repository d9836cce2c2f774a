"""`GET /healthz`: 200 while the store answers, 503 when it does not; open even with authentication on."""

from __future__ import annotations

import pytest

from lean_chat.app import build_app
from lean_chat.config import Settings
from lean_chat.store.sqlite import SQLiteStore
from tests.support.apps import in_process

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("persistent", [True, False], ids=["sqlite", "memory"])
async def test_healthz_answers_while_the_store_does(sqlite_path: str, persistent: bool) -> None:
    async with in_process(sqlite_path=sqlite_path if persistent else "", api_keys=["k"]) as http:
        response = await http.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"ok": True}


async def test_healthz_is_503_when_the_store_is_gone(sqlite_path: str) -> None:
    store = SQLiteStore(sqlite_path)
    app = build_app(Settings(sqlite_path=sqlite_path), store=store)
    async with in_process(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        await store.close()  # the database connection is lost
        response = await http.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"ok": False, "detail": "store unavailable"}
        await store.open()
        assert (await http.get("/healthz")).status_code == 200
