"""`GET /openapi.json`: generated from the msgspec schemas, describing the real endpoints and bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from lean_chat import create_app
from lean_chat.http.openapi import openapi_document
from lean_chat.http.schema import (
    MAX_ID_CHARS,
    ChatRequest,
    CreateConversationRequest,
    DeleteConversationRequest,
    StopRequest,
    UserOnlyRequest,
    decode_body,
)
from lean_chat.refusals import ValidationFailed
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow one `$ref`."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def _reply_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The component describing a route's 200 JSON body."""
    content = document["paths"][path][method]["responses"]["200"]["content"]
    return _resolve(document, content["application/json"]["schema"])


def _assert_fits(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """A real JSON value has every required key and no key the document does not name (recursively)."""
    schema = _resolve(document, schema)
    if "anyOf" in schema:
        options = [_resolve(document, s) for s in schema["anyOf"]]
        objects = [s for s in options if s.get("type") == "object"]
        if not isinstance(value, dict) or not objects:
            return
        schema = objects[0]
    if isinstance(value, dict) and "properties" in schema:
        assert set(schema.get("required", [])) <= set(value), (schema["title"], value)
        assert set(value) <= set(schema["properties"]), (schema["title"], value)
        for key, item in value.items():
            _assert_fits(document, schema["properties"][key], item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _assert_fits(document, schema["items"], item)


async def test_the_core_app_serves_its_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document == openapi_document()


def test_every_route_of_the_app_is_described_with_its_methods() -> None:
    app = create_app(sqlite_path="")
    document = openapi_document()
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in (route.methods or ())
        if method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == served


def test_request_bodies_come_from_the_msgspec_structs_with_their_rules() -> None:
    schemas = openapi_document()["components"]["schemas"]
    chat = schemas["ChatRequest"]
    assert chat["required"] == ["userId", "messages"]
    assert chat["properties"]["userId"] == {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}
    assert chat["properties"]["messages"]["items"] == {"$ref": "#/components/schemas/ChatMessage"}
    assert sorted(schemas["ChatMessage"]["properties"]["role"]["enum"]) == ["assistant", "system", "user"]
    assert schemas["DeleteConversationRequest"]["properties"]["conversationId"]["minLength"] == 1
    assert "minLength" not in schemas["CreateConversationRequest"]["properties"]["title"]


def test_the_document_matches_the_reference_paths_operations_and_bodies() -> None:
    from fastapi_ai_chat import create_app as reference_app

    theirs = reference_app(sqlite_path="").openapi()
    ours = openapi_document()
    for path, item in theirs["paths"].items():
        for method, operation in item.items():
            mine = ours["paths"][path][method]
            assert mine["operationId"] == operation["operationId"]
            assert mine.get("parameters", []) == operation.get("parameters", [])
            assert mine.get("requestBody") == operation.get("requestBody")
            assert "422" in mine["responses"]
    for name in ("ChatRequest", "ChatMessage", "UserOnlyRequest", "CreateConversationRequest"):
        reference = theirs["components"]["schemas"][name]
        mine = ours["components"]["schemas"][name]
        assert mine["required"] == reference["required"], name
        assert set(mine["properties"]) == set(reference["properties"]), name
        for field, rule in reference["properties"].items():
            assert mine["properties"][field].get("minLength") == rule.get("minLength"), (name, field)


async def test_real_replies_paged_ones_included_fit_the_documented_shapes(client: httpx.AsyncClient) -> None:
    document = openapi_document()
    body = {"userId": "doc", "messages": [{"role": "user", "content": "hi"}], "params": {"mock": {"tokenDelayMs": 0}}}
    frames = parse_frames((await client.post("/chat/stream", json=body)).content)
    done = check_grammar(frames)
    schemas = document["components"]["schemas"]
    _assert_fits(document, schemas["TokenEvent"], frames[0].data)
    _assert_fits(document, schemas["DoneEvent"], done.data)
    paged = {"userId": "doc", "conversationId": "default:doc", "limit": "1"}
    page = await client.get("/chat/conversation", params=paged)  # adds `nextBefore` and `hasMore`
    assert page.json()["hasMore"] is True
    _assert_fits(document, _reply_schema(document, "/chat/conversation", "get"), page.json())
    created = await client.post("/chat/conversation/create", json={"userId": "doc", "title": "T"})
    replies = {
        ("/chat/history", "get"): await client.get("/chat/history", params={"userId": "doc"}),
        ("/chat/conversations", "get"): await client.get("/chat/conversations", params={"userId": "doc"}),
        ("/chat/conversation", "get"): await client.get(
            "/chat/conversation", params={"userId": "doc", "conversationId": "default:doc"}
        ),
        ("/chat/conversation/create", "post"): created,
        ("/chat/conversation/delete", "post"): await client.post(
            "/chat/conversation/delete", json={"userId": "doc", "conversationId": created.json()["conversationId"]}
        ),
        ("/chat/clear", "post"): await client.post("/chat/clear", json={"userId": "doc"}),
        ("/healthz", "get"): await client.get("/healthz"),
    }
    for (path, method), response in replies.items():
        assert response.status_code == 200, path
        _assert_fits(document, _reply_schema(document, path, method), response.json())
    invalid = await client.post("/chat/stream", json={"userId": ""})
    assert invalid.status_code == 422
    _assert_fits(document, schemas["HTTPValidationError"], invalid.json())


@pytest.mark.parametrize(
    "kind", [ChatRequest, UserOnlyRequest, CreateConversationRequest, DeleteConversationRequest, StopRequest]
)
def test_documented_id_lengths_are_the_ones_the_decoder_enforces(kind: type[Any]) -> None:
    schema = openapi_document()["components"]["schemas"][kind.__name__]
    for field, rule in schema["properties"].items():
        text = next((t for t in rule.get("anyOf", [rule]) if t.get("type") == "string"), None)
        if text is None or "maxLength" not in text:
            continue
        fewest, most = text.get("minLength", 0), text["maxLength"]
        body = {"userId": "u", "conversationId": "c", "messages": []}
        for length, accepted in ((fewest, True), (most, True), (most + 1, False), (fewest - 1, False)):
            if length < 0:
                continue
            value = {**body, field: "x" * length}
            if accepted:
                decode_body(json.dumps(value).encode(), kind)
            else:
                with pytest.raises(ValidationFailed):
                    decode_body(json.dumps(value).encode(), kind)


async def test_opted_in_frames_fit_the_documented_shapes() -> None:
    from lean_chat import create_app
    from tests.support.apps import in_process
    from tests.support.tools import add, tool_body

    document = openapi_document()
    schemas = document["components"]["schemas"]
    calls = [{"name": "add", "args": {"a": 1, "b": 2}}, {"name": "add", "args": {"a": "x"}}]
    body = tool_body("doc", "hi", calls, ["reasoning", "tools"], "Reason.")
    async with in_process(create_app(sqlite_path="", tools=[add])) as http:
        frames = parse_frames((await http.post("/chat/stream", json=body)).content)
    done = check_grammar(frames, opted_in=True)
    names = {"reasoning": "ReasoningEvent", "tool_call": "ToolCallEvent", "tool_result": "ToolResultEvent"}
    names.update(step="StepEvent", token="TokenEvent", done="DoneEvent")
    for frame in frames:
        assert frame.event is not None
        _assert_fits(document, schemas[names[frame.event]], frame.data)
    assert {f.event for f in frames} == set(names)
    assert "steps" in done.data and "parts" in done.data["message"]
    stream = document["paths"]["/chat/stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in stream["schema"]["oneOf"]} == {*names.values(), "ErrorEvent"}
