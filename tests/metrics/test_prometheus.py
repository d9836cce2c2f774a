"""`GET /metrics` after a known workload: mock streams, a fake OpenAI failing in scripted ways, bad requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from lean_chat import create_app
from lean_chat.app import build_app
from lean_chat.config import Settings
from lean_chat.store.memory import MemoryStore
from tests.support.apps import in_process, stream_body
from tests.support.frames import check_grammar, parse_frames
from tests.support.live_server import LiveServer
from tests.support.scrape import Samples, parse_samples, value
from tests.support.upstreams import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

KEY = "metrics-test-key-0001"
AUTH = {"authorization": f"Bearer {KEY}"}


async def scrape(http: httpx.AsyncClient) -> Samples:
    """The app's figures now."""
    response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_samples(response.text)


async def stream(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """One stream's final frame's data."""
    response = await http.post("/chat/stream", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = check_grammar(parse_frames(response.content)).data
    return data


def assert_one_mock_stream_closed(samples: Samples) -> None:
    """No mock stream is open, and exactly one (gpt-4.1) had its whole duration observed."""
    assert value(samples, "lean_chat_streams_open", provider="mock") == 0
    labels = {"gen_ai_provider_name": "mock", "gen_ai_request_model": "gpt-4.1"}
    assert value(samples, "gen_ai_client_operation_duration_seconds_count", **labels) == 1


def metrics_settings(fake: FakeOpenAI, url: str, **extra: Any) -> dict[str, Any]:
    """Settings: metrics on, history in memory, OpenAI at the fake with quick retries, one API key."""
    return {
        "metrics": True,
        "sqlite_path": "",
        "api_keys": [KEY],
        "openai_max_retries": 2,
        "openai_retry_base_delay_ms": 1,
        "openai_retry_max_delay_ms": 2,
        **fake.options(url),
        **extra,
    }


async def test_known_workload_gives_exact_figures(live_server: Callable[..., LiveServer]) -> None:
    fake = FakeOpenAI()
    upstream = live_server(fake)
    async with in_process(**metrics_settings(fake, upstream.url, max_body_bytes=2000)) as http:
        # 1: a 429 then a good reply (one retry), model named.
        fake.queue(Reply(status=429, headers={"retry-after": "0"}), Reply(tokens=["a", "b", "c"], input_tokens=11))
        first = await stream(http, stream_body("u1", "one", model="gpt-4.1"))
        assert first["usage"] == {"tokens": 3, "inputTokens": 11, "outputTokens": 3}
        # 2: no model named, a revoked key: the mock answers instead (a fallback).
        fake.queue(Reply(status=401))
        second = await stream(http, stream_body("u2", "two"))
        assert second["provider"] == "mock:gpt-4.1"
        # 3: an error event after two tokens.
        fake.queue(Reply(tokens=["xx", "yy", "zz"], fail_after=2))
        third = await stream(http, stream_body("u3", "three", model="gpt-4.1"))
        assert third["error"]["code"] == "provider_error"
        # 4: a model the upstream does not know, with a hostile name.
        fake.queue(Reply(status=404, error_type="model_not_found"))
        fourth = await stream(http, stream_body("u4", "four", model='evil"} 1\nlean_chat_x{a="b'))
        assert fourth["error"]["code"] == "provider_error"
        # 5, 6: the mock, named.
        for user in ("u5", "u6"):
            assert (await stream(http, stream_body(user, "mock", model="mock-fast")))["provider"] == "mock:mock-fast"
        # Refused: no key, bad body, body too large, unknown path.
        assert (await http.post("/chat/stream", json=stream_body("u7", "x"))).status_code == 401
        assert (await http.post("/chat/stream", json={"userId": 5}, headers=AUTH)).status_code == 422
        big = stream_body("u8", "x" * 3000)
        assert (await http.post("/chat/stream", json=big, headers=AUTH)).status_code == 413
        assert (await http.get("/nowhere", headers=AUTH)).status_code == 404
        samples = await scrape(http)

    def v(name: str, **labels: str) -> float:
        return value(samples, name, **labels)

    assert v("lean_chat_streams_started_total", provider="openai", model="gpt-4.1") == 3
    assert v("lean_chat_streams_started_total", provider="openai", model="other") == 1
    assert v("lean_chat_streams_started_total", provider="mock", model="mock") == 2
    ended = "lean_chat_streams_ended_total"
    assert v(ended, provider="openai", model="gpt-4.1", outcome="done", code="") == 2
    assert v(ended, provider="openai", model="gpt-4.1", outcome="error", code="provider_error") == 1
    assert v(ended, provider="openai", model="other", outcome="error", code="provider_error") == 1
    assert v(ended, provider="mock", model="mock", outcome="done", code="") == 2
    assert sum(value for (name, _), value in samples.items() if name == ended) == 6
    assert v("lean_chat_streams_open", provider="openai") == 0
    assert v("lean_chat_streams_open", provider="mock") == 0
    assert v("lean_chat_upstream_attempts_total", provider="openai") == 5
    assert v("lean_chat_upstream_retries_total", provider="openai") == 1
    failures = "lean_chat_upstream_failures_total"
    assert v(failures, provider="openai", error_type="429") == 1
    assert v(failures, provider="openai", error_type="401") == 1
    assert v(failures, provider="openai", error_type="404") == 1
    assert v(failures, provider="openai", error_type="provider_error") == 1
    assert sum(value for (name, _), value in samples.items() if name == failures) == 4
    assert v("lean_chat_upstream_fallbacks_total", provider="openai") == 1
    # Whole-reply duration for every stream, first chunk for those that sent a token (not the unknown model's).
    duration = "gen_ai_client_operation_duration_seconds_count"
    first_chunk = "gen_ai_client_operation_time_to_first_chunk_seconds_count"
    openai = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4.1"}
    assert v(duration, **openai) == 3
    assert v(first_chunk, **openai) == 3
    assert v(duration, gen_ai_provider_name="openai", gen_ai_request_model="other") == 1
    assert v(first_chunk, gen_ai_provider_name="openai", gen_ai_request_model="other") == 0
    # Tokens: the provider's counts where given, else the estimate the done frame shows.
    tokens = "gen_ai_client_token_usage"
    output_sum = 3 + second["usage"]["tokens"] + (len("xxyy") + 3) // 4
    assert v(f"{tokens}_sum", **openai, gen_ai_token_type="output") == output_sum
    assert v(f"{tokens}_count", **openai, gen_ai_token_type="output") == 3
    assert v(f"{tokens}_sum", **openai, gen_ai_token_type="input") == 11
    assert v(f"{tokens}_count", **openai, gen_ai_token_type="input") == 1
    refused = "lean_chat_requests_refused_total"
    assert {status: v(refused, status=status) for status in ("401", "404", "413", "422", "429")} == {
        "401": 1,
        "404": 1,
        "413": 1,
        "422": 1,
        "429": 0,
    }
    # Six turns started in the memory store (one operation each), none failed.
    assert v("lean_chat_store_operation_duration_seconds_count", store="memory", operation="start_turn") == 6
    assert not any(name == "lean_chat_store_failures_total" and value for (name, _), value in samples.items())
    assert v("lean_chat_workers") == 1


class FailingPingStore(MemoryStore):
    """A memory store whose health check fails."""

    async def ping(self) -> None:
        raise OSError("disk gone")


async def test_store_failures_are_counted_by_store_kind() -> None:
    app = build_app(Settings(metrics=True, sqlite_path=""), store=FailingPingStore())
    async with in_process(app) as http:
        assert (await http.get("/healthz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 503
        samples = parse_samples((await http.get("/metrics")).text)
    assert value(samples, "lean_chat_store_failures_total", store="failingping", operation="ping") == 2
    assert (
        value(samples, "lean_chat_store_operation_duration_seconds_count", store="failingping", operation="ping") == 2
    )


async def test_metrics_needs_an_api_key_when_keys_are_set() -> None:
    async def everyone(request: Any) -> str:
        return "anyone"

    app = build_app(Settings(metrics=True, sqlite_path="", api_keys=[KEY]), authenticate=everyone)
    async with in_process(app) as http:
        assert (await http.get("/metrics")).status_code == 401
        # An end user accepted by the hook does not get the figures.
        assert (await http.get("/metrics", headers={"authorization": "Bearer user-token"})).status_code == 401
        assert (await http.get("/metrics", headers=AUTH)).status_code == 200
        assert (await http.get("/healthz")).status_code == 200


async def test_metrics_are_open_without_keys_and_absent_when_off() -> None:
    async with in_process(metrics=True, sqlite_path="") as http:
        assert (await http.get("/metrics")).status_code == 200
    async with in_process(sqlite_path="") as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_no_label_takes_a_client_value(live_server: Callable[..., LiveServer]) -> None:
    fake = FakeOpenAI(Reply(status=404))
    upstream = live_server(fake)
    hostile = [f"gpt-{i}\n\u2028<script>" for i in range(30)] + [f"mock-{i}-{'z' * 200}" for i in range(30)]
    users = [f'user\n{i}"}}' for i in range(5)]
    settings = metrics_settings(fake, upstream.url, api_keys=[KEY], metrics_max_models=5)
    async with in_process(**settings) as http:
        for i, model in enumerate(hostile):
            cid = f'conv-{i}-\n"}}'  # hostile, yet an id lean_chat takes (a U+0000 would be a 422)
            body = stream_body(users[i % len(users)], "hi", model=model, conversation_id=cid)
            await http.post("/chat/stream", json=body, headers={**AUTH, "x-request-id": f"rid-{i}"})
        samples = await scrape(http)
    labels = {(key, label) for (_, pairs) in samples for key, label in pairs}
    by_key: dict[str, set[str]] = {}
    for key, label in labels:
        by_key.setdefault(key, set()).add(label)
    assert by_key["model"] <= {"gpt-4.1", "mock", "other"}
    assert by_key["gen_ai_request_model"] <= {"gpt-4.1", "mock", "other"}
    assert by_key["provider"] <= {"openai", "anthropic", "gemini", "mock"}
    assert by_key["outcome"] <= {"done", "error", "client_gone", "stopped", "stalled_client"}
    for key, label in labels:
        assert not any(part in label for part in ("user", "conv", "rid-", "<script>", "z" * 20)), (key, label)
    assert (
        value(
            samples,
            "lean_chat_streams_ended_total",
            provider="openai",
            model="other",
            outcome="error",
            code="provider_error",
        )
        == 30
    )


async def test_model_labels_are_learned_from_real_replies_up_to_a_count(
    live_server: Callable[..., LiveServer],
) -> None:
    fake = FakeOpenAI(Reply(tokens=["ok"]))
    upstream = live_server(fake)
    # The default and one more name may be labels.
    async with in_process(**metrics_settings(fake, upstream.url, metrics_max_models=2)) as http:
        for model in ("gpt-4o", "gpt-4o", "gpt-x", "gpt-x"):
            await stream(http, stream_body("u", "hi", model=model))
        samples = await scrape(http)
    started = "lean_chat_streams_started_total"
    # The first stream of a model is `other` (nothing had served it yet); then it is known, while room is left.
    assert value(samples, started, provider="openai", model="gpt-4o") == 1
    assert value(samples, started, provider="openai", model="other") == 3
    assert value(samples, started, provider="openai", model="gpt-x") == 0


def test_a_client_that_leaves_is_counted_as_gone(live_server: Callable[..., LiveServer]) -> None:
    server = live_server(create_app(metrics=True, sqlite_path=""))
    slow = stream_body("gone", "hi", tokenDelayMs=20, targetChars=4000)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        with http.stream("POST", "/chat/stream", json=slow) as response:
            for chunk in response.iter_bytes():
                if b"event: token" in chunk:
                    break  # leave mid-reply
        ended = "lean_chat_streams_ended_total"
        labels = {"provider": "mock", "model": "gpt-4.1", "outcome": "client_gone", "code": ""}
        deadline = time.monotonic() + 10
        while value(parse_samples(http.get("/metrics").text), ended, **labels) != 1:
            assert time.monotonic() < deadline, "the stream was not counted as gone"
            time.sleep(0.05)
        samples = parse_samples(http.get("/metrics").text)
    assert_one_mock_stream_closed(samples)


async def test_pool_gauges_read_the_lean_transport(live_server: Callable[..., LiveServer]) -> None:
    # The pool gauges once read only httpx's own pool: under lean_chat's transport they stayed at zero.
    fake = FakeOpenAI()
    upstream = live_server(fake)
    server = live_server(create_app(**metrics_settings(fake, upstream.url)))
    fake.queue(Reply(tokens=["a"] * 40, token_delay=0.05))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        body = stream_body("pool", "hi", model="gpt-4.1")
        async with http.stream("POST", "/chat/stream", json=body, headers=AUTH) as response:
            chunks = response.aiter_bytes()
            await chunks.__anext__()
            during = await scrape(http)
            assert value(during, "lean_chat_upstream_pool_connections", state="in_use") == 1
            assert value(during, "lean_chat_upstream_pool_waiting") == 0
            async for _ in chunks:
                pass
        after = await scrape(http)
    assert value(after, "lean_chat_upstream_pool_connections", state="in_use") == 0
    assert value(after, "lean_chat_upstream_pool_connections", state="idle") == 1


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_resumable_streams_are_counted_like_the_others(log_format: str) -> None:
    # Resumable streams (produced apart from their connection) once left every stream metric untouched; their
    # POST's JSON log line reads the stream too, and must not count it a second time.
    async with in_process(metrics=True, sqlite_path="", api_keys=[KEY], log_format=log_format) as http:
        body = stream_body("resumer", "hi")
        body["params"]["resume"] = True
        assert (await stream(http, body))["type"] == "done"
        samples = await scrape(http)
    assert value(samples, "lean_chat_streams_started_total", provider="mock", model="gpt-4.1") == 1
    ended = value(samples, "lean_chat_streams_ended_total", provider="mock", model="gpt-4.1", outcome="done", code="")
    assert ended == 1
    assert_one_mock_stream_closed(samples)


async def test_an_empty_reply_counts_the_output_tokens_its_done_frame_shows(
    live_server: Callable[..., LiveServer],
) -> None:
    fake = FakeOpenAI(Reply(tokens=[], usage=False))
    url = live_server(fake).url
    async with in_process(**metrics_settings(fake, url)) as http:
        done = await stream(http, {"userId": "u", "messages": [{"role": "user", "content": "hi"}]})
        samples = await scrape(http)
    assert done["type"] == "done" and done["message"]["content"] == "" and done["usage"]["tokens"] == 1
    output = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4.1", "gen_ai_token_type": "output"}
    assert value(samples, "gen_ai_client_token_usage_sum", **output) == done["usage"]["tokens"]
