"""`lean_chat.compat`: FastAPI apps served by lean_chat, called and configured like fastapi-ai-chat's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lean_chat import Settings
from lean_chat import create_app as create_core_app
from lean_chat.compat import create_app, create_app_from_env
from lean_chat.http.openapi import openapi_document
from tests.support.apps import asgi_client, in_process
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import API_KEY, FakeOpenAI, Reply

BODY = {"userId": "ana", "messages": [{"role": "user", "content": "Hello"}], "params": {"mock": {"tokenDelayMs": 0}}}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """Run Python code in a fresh interpreter."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.anyio
async def test_the_fastapi_app_streams_keeps_history_and_documents_the_real_routes() -> None:
    app = create_app(sqlite_path="")
    assert isinstance(app, FastAPI)

    @app.get("/extra/ping")
    async def extra_ping() -> dict[str, str]:
        return {"pong": "yes"}

    async with in_process(app) as http:
        stream = await http.post("/chat/stream", json=BODY)
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        done = check_grammar(parse_frames(stream.content))
        assert done.data["provider"] == "mock:gpt-4.1"
        history = (await http.get("/chat/history", params={"userId": "ana"})).json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        assert (await http.get("/extra/ping")).json() == {"pong": "yes"}
        document = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
        assert (await http.get("/nowhere")).json() == {"detail": "Not Found"}
        assert (await http.get("/chat/stream")).status_code == 405
        invalid = await http.post("/chat/stream", json={"userId": "", "messages": []})
    core = openapi_document()
    assert {k: v for k, v in document["paths"].items() if k != "/extra/ping"} == core["paths"]
    assert "/extra/ping" in document["paths"]
    assert document["components"]["schemas"]["DoneEvent"] == core["components"]["schemas"]["DoneEvent"]
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert invalid.status_code == 422
    assert [e["loc"] for e in invalid.json()["detail"]] == [["body", "userId"]]


def test_mounted_under_a_prefix_with_the_parent_running_its_lifespan(
    live_server: Callable[..., LiveServer], tmp_path: Any
) -> None:
    ai = create_app(sqlite_path=str(tmp_path / "chat.sqlite3"), serve_demo_page=True)
    parent = FastAPI(lifespan=ai.router.lifespan_context)

    @parent.get("/")
    async def home() -> dict[str, str]:
        return {"app": "parent"}

    parent.mount("/ai", ai)
    server = live_server(parent)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/").json() == {"app": "parent"}
        done = check_grammar(parse_frames(http.post("/ai/chat/stream", json=BODY).content))
        assert done.event == "done"
        history = http.get("/ai/chat/history", params={"userId": "ana"}).json()
        assert history["messages"][-1]["content"] == done.data["message"]["content"]
        document = http.get("/ai/openapi.json").json()
        assert document["servers"] == [{"url": "/ai"}]
        assert "/chat/stream" in document["paths"]
        assert "/ai/openapi.json" in http.get("/ai/docs").text
        assert http.get("/chat/stream").status_code == 404
        assert "streamChat" in http.get("/ai/").text


def test_create_app_reads_the_base_url_from_the_environment_as_the_reference_does(
    live_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeOpenAI(Reply(tokens=["Straight", " from", " the", " fake"]))
    upstream = live_server(fake)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url(upstream.url))
    server = live_server(create_app(openai_api_key=API_KEY, sqlite_path=""))
    body = {"userId": "env", "messages": [{"role": "user", "content": "hi"}], "params": {"model": "gpt-4.1"}}
    done = check_grammar(parse_frames(httpx.post(f"{server.url}/chat/stream", json=body, timeout=10).content))
    assert done.data["message"]["content"] == "Straight from the fake"
    assert done.data["provider"] == "openai:gpt-4.1"
    assert fake.attempts == 1


@pytest.mark.anyio
async def test_create_app_from_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTAPI_AI_CHAT_SQLITE_PATH", "")
    monkeypatch.setenv("LEAN_CHAT_SERVE_DEMO_PAGE", "1")
    async with in_process(create_app_from_env()) as http:
        page = await http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "streamChat" in page.text


@pytest.mark.anyio
async def test_the_library_app_does_not_serve_the_demo_page_unless_asked() -> None:
    async with in_process(create_core_app(sqlite_path="")) as http:
        assert (await http.get("/")).status_code == 404
    async with in_process(create_core_app(settings=Settings(sqlite_path="", serve_demo_page=True))) as http:
        assert "<title>lean_chat</title>" in (await http.get("/")).text


def test_a_missing_fastapi_gives_an_import_error_naming_the_extra() -> None:
    code = (
        "import sys\nsys.modules['fastapi'] = None\n"
        "try:\n    import lean_chat.compat\nexcept ImportError as error:\n    print(error)"
    )
    result = _run(code)
    assert "pip install 'lean-chat[fastapi]'" in result.stdout, result.stderr


def test_the_core_never_imports_fastapi() -> None:
    code = (
        "import sys, lean_chat, lean_chat.app, lean_chat.server.cli, lean_chat.http.openapi\n"
        "lean_chat.create_app(sqlite_path='')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'pydantic', 'fastapi_ai_chat')))"
    )
    result = _run(code)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.anyio
async def test_without_its_lifespan_the_app_says_so_instead_of_failing() -> None:
    app = create_app(sqlite_path="")
    async with asgi_client(app) as http:
        response = await http.post("/chat/stream", json=BODY)
        docs = await http.get("/openapi.json")
    assert response.status_code == 503
    assert "lifespan" in response.json()["detail"]
    assert docs.status_code == 200


@pytest.mark.anyio
async def test_the_fastapi_apps_take_tools_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.tools import add, tool_body

    monkeypatch.setenv("FASTAPI_AI_CHAT_SQLITE_PATH", "")
    body = tool_body("tools", "x", [{"name": "add", "args": {"a": 20, "b": 22}}], ["tools"])
    for app in (create_app(sqlite_path="", tools=[add]), create_app_from_env(tools=[add])):
        async with in_process(app) as http:
            frames = parse_frames((await http.post("/chat/stream", json=body)).content)
        check_grammar(frames, opted_in=True)
        (result,) = [f.data for f in frames if f.event == "tool_result"]
        assert result["output"] == 42 and result["isError"] is False
