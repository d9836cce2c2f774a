"""Authentication: API keys for a trusted backend, the `authenticate` hook, 401 before any work, 403 on userId."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from lean_chat import Settings, create_app
from lean_chat.http.auth import AuthRejected
from tests.support.apps import http_scope, in_process, json_headers, stream_body
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

KEYS = ["backend-key-one", "backend-key-two"]
SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def bearer(token: str) -> dict[bytes, bytes]:
    """The Authorization header for a bearer token (bytes: a token may hold any UTF-8)."""
    return {b"authorization": f"Bearer {token}".encode()}


async def named_user(request: Request) -> str | None:
    """A test hook: the caller is whoever `x-test-user` names; `reject` raises, no header refuses."""
    name = request.headers.get("x-test-user")
    if name == "reject":
        raise AuthRejected("Token expired.")
    if name == "broken":
        raise ValueError("secret-token-123 is malformed")
    return name


# Every endpoint with a request naming `user` (a body or a query string).
def calls(user: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, request options) for every endpoint, acting as `user`."""
    return [
        ("POST", "/chat/stream", {"json": stream_body(user, "hi")}),
        ("GET", "/chat/history", {"params": {"userId": user}}),
        ("POST", "/chat/clear", {"json": {"userId": user}}),
        ("GET", "/chat/conversations", {"params": {"userId": user}}),
        ("GET", "/chat/conversation", {"params": {"userId": user, "conversationId": "c1"}}),
        ("POST", "/chat/conversation/create", {"json": {"userId": user, "conversationId": "c1"}}),
        ("POST", "/chat/conversation/delete", {"json": {"userId": user, "conversationId": "c1"}}),
    ]


async def test_auth_is_off_by_default(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path) as http:
        for method, path, options in calls("alice"):
            response = await http.request(method, path, **options)
            assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"authorization": "Basic YWxpY2U6cHc="}, bearer("")])
async def test_api_keys_refuse_missing_or_wrong_keys_with_401(
    sqlite_path: str, headers: dict[str, str] | dict[bytes, bytes]
) -> None:
    async with in_process(sqlite_path=sqlite_path, api_keys=KEYS) as http:
        for method, path, options in calls("alice"):
            response = await http.request(method, path, headers=headers, **options)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            detail = response.json()["detail"]
            assert isinstance(detail, str) and detail
            assert "wrong" not in detail
        # Nothing was done: no conversation was created, no stream saved anything.
        listed = await http.get("/chat/conversations", params={"userId": "alice"}, headers=bearer(KEYS[0]))
        assert listed.json()["conversations"] == []


async def test_api_keys_let_a_trusted_backend_act_for_any_user(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, api_keys=KEYS) as http:
        for key, user in ((KEYS[0], "alice"), (KEYS[1], "bob")):
            for method, path, options in calls(user):
                response = await http.request(method, path, headers=bearer(key), **options)
                assert response.status_code == 200, (path, response.text)
        stream = await http.post("/chat/stream", json=stream_body("carol", "hello"), headers=bearer(KEYS[1]))
        assert check_grammar(parse_frames(stream.content)).event == "done"


async def test_api_keys_come_from_the_environment() -> None:
    settings = Settings.from_env({"LEAN_CHAT_API_KEYS": " k1 , k2,,"})
    assert settings.api_keys == ["k1", "k2"]
    assert "k1" not in repr(settings)


async def test_healthz_and_cors_preflight_stay_open(sqlite_path: str) -> None:
    async with in_process(sqlite_path=sqlite_path, api_keys=KEYS) as http:
        assert (await http.get("/healthz")).status_code == 200
        preflight = await http.options(
            "/chat/stream",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        refused = await http.get("/chat/history", params={"userId": "a"}, headers={"origin": "https://app.example"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "*"  # the browser can read the 401


async def test_hook_names_the_caller_and_other_user_ids_get_403(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path, authenticate=named_user)
    async with in_process(app) as http:
        for method, path, options in calls("alice"):
            own = await http.request(method, path, headers={"x-test-user": "alice"}, **options)
            assert own.status_code == 200, (path, own.text)
            other = await http.request(method, path, headers={"x-test-user": "mallory"}, **options)
            assert other.status_code == 403, path
            assert other.json() == {"detail": "userId does not match the authenticated user."}
        alice = {"x-test-user": "alice"}
        assert (await http.post("/chat/stream", json=stream_body("alice", "again"), headers=alice)).status_code == 200
        history = await http.get("/chat/history", params={"userId": "alice"}, headers=alice)
        assert [m["role"] for m in history.json()["messages"]] == ["user", "assistant"]
        # A repeated query parameter cannot smuggle another user past the check.
        smuggled = await http.get("/chat/history?userId=alice&userId=mallory", headers={"x-test-user": "mallory"})
        assert smuggled.status_code == 200
        assert smuggled.json() == {"userId": "mallory", "messages": []}


@pytest.mark.parametrize(
    ("header", "detail"),
    [(None, "Invalid credentials."), ("reject", "Token expired."), ("broken", "Invalid credentials.")],
)
async def test_hook_refusals_are_401(
    sqlite_path: str, header: str | None, detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(sqlite_path=sqlite_path, authenticate=named_user)
    headers = {"x-test-user": header} if header else {}
    async with in_process(app) as http:
        for method, path, options in calls("alice"):
            response = await http.request(method, path, headers=headers, **options)
            assert response.status_code == 401, path
            assert response.json() == {"detail": detail}
    assert "secret-token-123" not in caplog.text


async def test_api_key_and_hook_together(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path, api_keys=KEYS, authenticate=named_user)
    async with in_process(app) as http:
        as_backend = await http.get("/chat/history", params={"userId": "anyone"}, headers=bearer(KEYS[0]))
        assert as_backend.status_code == 200
        as_user = await http.get("/chat/history", params={"userId": "bob"}, headers={"x-test-user": "bob"})
        assert as_user.status_code == 200
        assert (await http.get("/chat/history", params={"userId": "bob"})).status_code == 401


async def test_401_comes_before_the_body_is_read(sqlite_path: str) -> None:
    """A refused request is answered without reading its body (an endless upload is not waited for)."""
    app = create_app(sqlite_path=sqlite_path, api_keys=KEYS)
    received: list[str] = []

    async def receive() -> dict[str, Any]:
        received.append("body")
        return {"type": "http.request", "body": b"{", "more_body": True}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(headers=json_headers())
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["status"] == 401
    assert received == []


def security_doc_example() -> str:
    """The signed-token example of docs/security.md."""
    text = SECURITY_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/security.md has no python example"
    return str(blocks[0])


async def test_security_doc_signed_token_example_works(sqlite_path: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(security_doc_example(), "docs/security.md", "exec"), namespace)
    app = create_app(sqlite_path=sqlite_path, authenticate=namespace["authenticate"])
    sign = namespace["sign"]
    good = sign("alice", int(time.time()) + 60)
    async with in_process(app) as http:
        ok = await http.get("/chat/history", params={"userId": "alice"}, headers=bearer(good))
        assert ok.status_code == 200
        other = await http.get("/chat/history", params={"userId": "bob"}, headers=bearer(good))
        assert other.status_code == 403
        expired = sign("alice", int(time.time()) - 1)
        tampered = good.replace(good.split(".")[0], sign("bob", 0).split(".")[0])
        for token in (expired, tampered, good + "x", "junk", "a.b.c", "\u00e9.1.2"):
            refused = await http.get("/chat/history", params={"userId": "alice"}, headers=bearer(token))
            assert refused.status_code == 401, token
        assert (await http.get("/chat/history", params={"userId": "alice"})).status_code == 401


async def test_constant_time_comparison_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key check goes through hmac.compare_digest for every configured key (no early exit)."""
    calls_seen: list[bytes] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls_seen.append(b)
        return original(a, b)

    with monkeypatch.context() as patched:
        patched.setattr(hmac, "compare_digest", spy)
        app = create_app(sqlite_path="", api_keys=KEYS)
        async with in_process(app) as http:
            response = await http.get("/chat/history", params={"userId": "a"}, headers=bearer(KEYS[0]))
            assert response.status_code == 200
    assert calls_seen == [k.encode() for k in KEYS]


@pytest.mark.parametrize("header", ["Bearer", "bearer  backend-key-one", "Bearer backend-key-one ", "Token x"])
async def test_odd_authorization_headers(sqlite_path: str, header: str) -> None:
    async with in_process(sqlite_path=sqlite_path, api_keys=KEYS) as http:
        response = await http.get("/chat/history", params={"userId": "a"}, headers={"authorization": header})
        assert response.status_code in (200, 401)
        if "backend-key-one" in header:
            assert response.status_code == 200
        else:
            assert response.status_code == 401


async def test_user_mismatch_cannot_be_used_to_probe_with_httpx_errors(sqlite_path: str) -> None:
    app = create_app(sqlite_path=sqlite_path, authenticate=named_user)
    async with in_process(app) as http:
        body = stream_body("victim", "x")
        response = await http.post("/chat/stream", json=body, headers={"x-test-user": "mallory"})
        assert response.status_code == 403
        check = await http.get("/chat/history", params={"userId": "victim"}, headers={"x-test-user": "victim"})
        assert check.json()["messages"] == []
