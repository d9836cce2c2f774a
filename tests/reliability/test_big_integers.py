"""A JSON or query integer of more than 4,300 digits (Python's int-string limit) is a 422 or read, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.apps import in_process, stream_body
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.anyio

# One digit past the limit `int()` puts on strings (sys.get_int_max_str_digits(), 4300 by default).
BIG = "1" * 4301
HUGE = "9" * 6000


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app with history in memory."""
    async with in_process(sqlite_path="") as client:
        yield client


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL database of this module's own (the test fails when the server is unreachable)."""
    with temporary_database("lc_big_integers") as url:
        yield url


def _json_detail(response: httpx.Response) -> list[dict[str, object]]:
    """The 422's FastAPI-shaped `detail` list (parsed without the int limit tripping on an echo)."""
    assert response.status_code == 422, (response.status_code, response.text[:300])
    detail = json.loads(response.content)["detail"]
    assert isinstance(detail, list) and detail and all(entry["msg"] for entry in detail)
    return detail


CHAT = '"messages":[{"role":"user","content":"hi"}]'


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/chat/clear", '{"userId":BIG}'),
        ("/chat/clear", '{"userId":-HUGE}'),
        ("/chat/conversation/create", '{"userId":"u","conversationId":BIG}'),
        ("/chat/conversation/delete", '{"userId":"u","conversationId":[BIG]}'),
        ("/chat/stream", '{"userId":"u",CHAT,"params":{"mock":{"targetChars":BIG}}}'),
        ("/chat/stream", '{"userId":"u",CHAT,"params":{"extra":{"deep":[{"x":HUGE}]}}}'),
        ("/chat/stream", '{"userId":"u","messages":[{"role":"user","content":"hi","meta":{"n":BIG}}]}'),
        ("/chat/stream", '{"userId":BIG,"messages":[BIG]}'),
    ],
)
async def test_an_integer_of_more_than_4300_digits_in_a_body_is_a_422_never_500(
    http: httpx.AsyncClient, path: str, template: str
) -> None:
    body = template.replace("CHAT", CHAT).replace("HUGE", HUGE).replace("BIG", BIG)
    response = await http.post(path, content=body, headers={"content-type": "application/json"})
    _json_detail(response)


@pytest.mark.parametrize("written", [BIG, HUGE, "+" + BIG, "-" + BIG, "1_" + BIG, " " + BIG, BIG + ".0", BIG + " "])
async def test_an_integer_of_more_than_4300_digits_in_the_limit_query_is_a_422_never_500(
    http: httpx.AsyncClient, written: str
) -> None:
    response = await http.get("/chat/conversations", params={"userId": "u", "limit": written})
    (entry,) = _json_detail(response)
    assert entry["loc"] == ["query", "limit"]
    assert entry["type"] == "int_parsing_size"


async def test_integers_up_to_the_limit_still_read(http: httpx.AsyncClient) -> None:
    # The boundary: 4,300 digits is an int Python reads; a limit that large is clamped, not refused.
    response = await http.get("/chat/conversations", params={"userId": "u", "limit": "1" * 4300})
    assert response.status_code == 200, response.text[:300]
    body = '{"userId":"u",CHAT,"params":{"extra":LONG}}'.replace("CHAT", CHAT).replace("LONG", "1" * 4300)
    async with http.stream("POST", "/chat/stream", content=body, headers={"content-type": "application/json"}) as r:
        assert r.status_code == 200
        assert b"event: done" in b"".join([chunk async for chunk in r.aiter_bytes()])


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["limit=" + "9" * 20, "before=" + "9" * 20, "limit=2&before=" + "9" * 4300])
async def test_a_page_bound_past_the_database_integers_gives_the_page_on_postgresql_never_500(
    postgres: str, query: str
) -> None:
    body = stream_body("pg", "hello", conversation_id="c")
    async with in_process(database_url=postgres) as http:
        await http.post("/chat/stream", json=body)
        response = await http.get(f"/chat/conversation?userId=pg&conversationId=c&{query}")
    assert response.status_code == 200, response.text[:300]
    roles = [m["role"] for m in response.json()["messages"]]
    assert roles[-2:] == ["user", "assistant"], roles
