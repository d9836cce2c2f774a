"""Upstream faults, per provider: each ends the right way (retry, fallback or a clear `error` frame), within a
bounded time, with the partial reply saved; the normal run goes through the whole matrix once, `-m slow`
throws a long random sequence of the same faults."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from lean_chat import create_app
from tests.conftest import fake_upstreams
from tests.fakes import API_KEY, FakeUpstream, Reply, refused_url
from tests.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}
TOKENS = ["Alpha", " beta", " gamma", " delta", " epsilon"]
READ_TIMEOUT = 0.3
HEARTBEAT = 0.05
MAX_RETRIES = 2
DEADLINE = 15.0  # no fault may keep a stream open longer than this


@dataclass
class Fault:
    """One upstream failure and how the stream must end."""

    name: str
    script: Callable[[FakeUpstream], list[Reply]]
    end: str  # "done" (retried or tolerated), "fallback" (the mock answered), "error"
    explicit: bool = True  # the client names the model (never replaced) or not (falls back to the mock)
    base_url: str | None = None  # "refused" or "dns": the provider points nowhere
    attempts: int | None = None  # upstream requests expected
    partial: int = 0  # tokens sent before the failure (saved, marked partial)
    error_says: str = ""  # part of the error message
    failing: int | None = None  # failing answers among the attempts (None: all of them)


def _status(status: int, **extra: Any) -> Callable[[FakeUpstream], list[Reply]]:
    """An answer with this status, then success."""
    return lambda fake: [Reply(status=status, **extra), Reply(tokens=TOKENS)]


def _malformed(fake: FakeUpstream) -> list[Reply]:
    """A stream with a chunk of broken JSON between good tokens."""
    ok = Reply(tokens=TOKENS)
    request = {"model": fake.model_hint}  # type: ignore[attr-defined]
    events = fake.token_events(ok, request)
    broken = 'data: {"choices": [{"delta": {"content": "oops"\n\n'
    raw = [*fake.head(ok, request), *events[:2], broken, *events[2:], *fake.tail(ok, request)]
    return [Reply(raw=raw)]


FAULTS = [
    Fault("connection refused", lambda f: [Reply()], "error", base_url="refused", error_says="could not connect"),
    Fault("connection refused, no model", lambda f: [Reply()], "fallback", explicit=False, base_url="refused"),
    Fault("dns failure", lambda f: [Reply()], "error", base_url="dns", error_says="could not connect"),
    Fault("429 retry-after, then ok", _status(429, headers={"retry-after": "0.05"}), "done", attempts=2, failing=1),
    Fault(
        "429 every time",
        lambda f: [Reply(status=429, headers={"retry-after": "0"}, error_message="Rate limit reached")],
        "error",
        attempts=MAX_RETRIES + 1,
        error_says="Rate limit reached",
    ),
    Fault("500, then ok", _status(500), "done", attempts=2, failing=1),
    Fault("502, then ok", _status(502), "done", attempts=2, failing=1),
    Fault("503, then ok", _status(503), "done", attempts=2, failing=1),
    Fault("529, then ok", _status(529, error_type="overloaded_error"), "done", attempts=2, failing=1),
    Fault(
        "503 every time, no model",
        lambda f: [Reply(status=503)],
        "fallback",
        explicit=False,
        attempts=MAX_RETRIES + 1,
    ),
    Fault(
        "cut mid-stream",
        lambda f: [Reply(tokens=TOKENS, drop_after=2)],
        "error",
        attempts=1,
        partial=2,
        error_says="closed the connection",
    ),
    Fault(
        "cut before the first token",
        lambda f: [Reply(tokens=TOKENS, drop_after=0), Reply(tokens=TOKENS)],
        "done",
        attempts=2,
        failing=1,
    ),
    Fault(
        "error event mid-stream",
        lambda f: [Reply(tokens=TOKENS, fail_after=3, error_message="Overloaded", error_type="overloaded_error")],
        "error",
        attempts=1,
        partial=3,
        error_says="Overloaded",
    ),
    Fault("malformed JSON chunk", _malformed, "done", attempts=1),
    Fault(
        "no first byte within the read timeout",
        lambda f: [Reply(tokens=TOKENS, stall=READ_TIMEOUT * 4)],
        "error",
        attempts=1,
        error_says="read timeout",
    ),
    Fault(
        "no first byte, no model",
        lambda f: [Reply(tokens=TOKENS, stall=READ_TIMEOUT * 4)],
        "fallback",
        explicit=False,
        attempts=1,
    ),
    Fault(
        "trickle slower than the heartbeat",
        lambda f: [Reply(tokens=TOKENS, token_delay=HEARTBEAT * 3)],
        "done",
        attempts=1,
        failing=0,
    ),
]


@dataclass
class Figures:
    """What a run injected."""

    cases: int = 0
    failing_answers: int = 0
    by_end: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    """The three fake upstreams, each under its own uvicorn on loopback."""
    with fake_upstreams() as found:
        for name, fake in found.items():
            fake.model_hint = MODELS[name]  # type: ignore[attr-defined]
        yield found


def lean_app(fake: FakeUpstream, sqlite_path: str, base_url: str | None) -> Any:
    """lean_chat with this provider configured (quick retries, short read timeout, frequent heartbeats)."""
    name = fake.name
    options: dict[str, Any] = {
        "sqlite_path": sqlite_path,
        f"{name}_api_key": fake.key,
        f"{name}_base_url": base_url or fake.base_url(),
        f"{name}_max_retries": MAX_RETRIES,
        f"{name}_retry_base_delay_ms": 1,
        f"{name}_retry_max_delay_ms": 2,
        "read_timeout_seconds": READ_TIMEOUT,
        "connect_timeout_seconds": 2.0,
        "heartbeat_seconds": HEARTBEAT,
        "default_model": MODELS[name],
    }
    return create_app(**options)


@asynccontextmanager
async def open_lean(fake: FakeUpstream, sqlite_path: str, base_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to lean_chat in-process (lifespan run)."""
    app = lean_app(fake, sqlite_path, base_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lean.test", timeout=30) as http:
            yield http


def _base(fault: Fault) -> str | None:
    """Where the provider points for this fault."""
    if fault.base_url == "refused":
        return refused_url()
    if fault.base_url == "dns":
        return "http://upstream.lean-chat.invalid/v1"
    return None


async def run_fault(http: httpx.AsyncClient, fake: FakeUpstream, fault: Fault, n: int, figures: Figures) -> None:
    """Inject one fault into one stream and check how it ends and what was saved."""
    fake.reset(*fault.script(fake))
    conversation = f"{fake.name}-{n}"
    params: dict[str, Any] = {"conversationId": conversation, "mock": {"tokenDelayMs": 0}}
    if fault.explicit:
        params["model"] = MODELS[fake.name]
    body = {"userId": "fault-user", "messages": [{"role": "user", "content": f"case {n}"}], "params": params}
    with anyio.fail_after(DEADLINE):
        response = await http.post("/chat/stream", json=body)
    assert response.status_code == 200
    frames = parse_frames(response.content)
    last = check_grammar(frames)
    sent = "".join(f.data["token"] for f in frames if f.event == "token")
    assert API_KEY not in response.text

    if fault.end == "done":
        assert last.event == "done", last.data
        assert last.data["provider"] == f"{fake.name}:{MODELS[fake.name]}"
        assert sent == "".join(TOKENS)
    elif fault.end == "fallback":
        assert last.event == "done", last.data
        assert last.data["provider"].startswith("mock:")
    else:
        assert last.event == "error", last.data
        message = last.data["error"]["message"]
        assert message.startswith(f"{fake.name} failed for model '{MODELS[fake.name]}': "), message
        assert fault.error_says.lower() in message.lower(), message
        assert sent == "".join(TOKENS[: fault.partial])
    if fault.attempts is not None:
        assert fake.attempts == fault.attempts, fake.attempts
    if fault.name.startswith("trickle"):
        assert any("ping" in f.comments for f in frames), "no heartbeat while the upstream trickled"

    stored = await http.get("/chat/conversation", params={"userId": "fault-user", "conversationId": conversation})
    messages = stored.json()["messages"]
    assert messages[0]["content"] == f"case {n}"
    if last.event == "done":
        assert messages[1:] == [{"role": "assistant", "content": last.data["message"]["content"], "meta": None}]
    elif fault.partial:
        assert messages[1:] == [{"role": "assistant", "content": sent, "meta": {"partial": True}}]
    else:
        assert messages[1:] == []

    figures.cases += 1
    if fault.base_url:  # nothing answered: every attempt (the first and each retry) failed to connect
        figures.failing_answers += MAX_RETRIES + 1
    else:
        figures.failing_answers += fake.attempts if fault.failing is None else min(fake.attempts, fault.failing)
    figures.by_end[fault.end] = figures.by_end.get(fault.end, 0) + 1


@pytest.mark.parametrize("provider", list(MODELS))
async def test_fault_matrix(provider: str, fakes: dict[str, FakeUpstream], tmp_path: Any) -> None:
    fake = fakes[provider]
    figures = Figures()
    for n, fault in enumerate(FAULTS):
        async with open_lean(fake, str(tmp_path / "faults.sqlite3"), _base(fault)) as http:
            try:
                await run_fault(http, fake, fault, n, figures)
            except AssertionError as exc:
                raise AssertionError(f"{provider} / {fault.name}: {exc}") from exc
    assert figures.cases == len(FAULTS)


@pytest.mark.slow
async def test_random_faults_long_run(fakes: dict[str, FakeUpstream], tmp_path: Any) -> None:
    """Thousands of streams, each with a random fault from the matrix on a random provider."""
    rng = random.Random(6)
    figures = Figures()
    async with AsyncExitStack() as stack:
        clients: dict[tuple[str, str | None], httpx.AsyncClient] = {}
        for n in range(3000):
            fake = fakes[rng.choice(list(MODELS))]
            fault = rng.choice(FAULTS)
            key = (fake.name, fault.base_url)
            if key not in clients:
                lean = open_lean(fake, str(tmp_path / "long.sqlite3"), _base(fault))
                clients[key] = await stack.enter_async_context(lean)
            await run_fault(clients[key], fake, fault, n, figures)
    print(
        f"\nfault long run: {figures.cases} streams with injected faults, {figures.failing_answers} failing upstream"
        f" answers or connections; endings {sorted(figures.by_end.items())}"
    )
