"""Conformance scenarios: what lean_chat and the reference must answer alike, and where lean_chat differs."""

from __future__ import annotations

import random
import re
from typing import Any

from tests.support.frames import check_grammar
from tests.support.upstreams import API_KEY, Reply

from .kit import Outcome, Request, Scenario

__all__ = ["SCENARIOS", "long_tokens", "scenario_named"]

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-3-5-sonnet", "gemini": "gemini-2.0-flash"}

# Tokens that are hard to carry: non-ASCII letters, emoji (with joiners and skin tones), quotes, backslashes,
# newlines inside and between tokens, tabs, JSON and HTML look-alikes, the SSE separator itself.
TRICKY_TOKENS = (
    "Grüße",
    " 你好",
    ", ",
    "👩🏽‍💻",
    ' "quoted"',
    " 'single'",
    " back\\slash",
    " C:\\path\\n",
    "\n",
    "line one\nline two",
    "\n\n",
    "event: token",
    "\ndata: {}\n\n",
    "\t",
    "tab\tinside",
    " </script>",
    " \u2028sep\u2029",
    ' {"json": [1, 2]}',
    " ∑ ≠ ∞",
    " 🙂",
    "!",
)

_WORDS = ("stream", "token", "naïve", "café", "über", "東京", "🚀", "λ", "x\\y", '"q"', "end.")


def long_tokens(count: int = 400, seed: int = 7) -> tuple[str, ...]:
    """A long, deterministic reply: words, spaces, line breaks; no token starts with the one before it.

    (The reference takes a Gemini chunk that starts with the previous chunk as "the text so far" and cuts it.)
    """
    rng = random.Random(seed)
    tokens: list[str] = []
    while len(tokens) < count:
        token = rng.choice(("", " ", " ", "\n")) + rng.choice(_WORDS)
        if tokens and token.startswith(tokens[-1]):
            continue
        tokens.append(token)
    return tuple(tokens)


def _body(user: str, text: str = "Hello there", **params: Any) -> dict[str, Any]:
    """A `/chat/stream` body with one user message."""
    return {"userId": user, "messages": [{"role": "user", "content": text}], "params": params}


def _stream(body: Any) -> Request:
    """`POST /chat/stream`."""
    return Request("POST", "/chat/stream", json=body)


# Checks.


def _streams(*outcomes: Outcome) -> None:
    """Each answer is a 200 event stream that keeps the grammar."""
    for outcome in outcomes:
        assert outcome.status == 200, outcome.body[:500]
        assert outcome.is_stream, outcome.headers
        check_grammar(outcome.frames)


def _comparable_done(ours: Outcome, theirs: Outcome) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both `done` payloads without `conversationId`, and ours without the usage keys the reference lacks."""
    mine, reference = dict(ours.final.data), dict(theirs.final.data)
    mine.pop("conversationId")
    reference.pop("conversationId")
    mine["usage"] = {k: v for k, v in mine["usage"].items() if k in reference["usage"]}
    return mine, reference


_UPSTREAM_FIELDS = ("model", "messages", "system", "max_tokens", "contents", "systemInstruction")


def _upstream_view(outcome: Outcome) -> list[tuple[str, dict[str, Any]]]:
    """What the provider was asked, per attempt: path and the fields that carry the conversation."""
    return [(r.path, {k: r.body.get(k) for k in _UPSTREAM_FIELDS if k in r.body}) for r in outcome.upstream]


def same_stream(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Real provider: the same token strings, the same `done`, and the same question put to the provider."""
    _streams(ours, theirs)
    assert ours.tokens == theirs.tokens
    assert ours.final.event == theirs.final.event == "done"
    mine, reference = _comparable_done(ours, theirs)
    assert mine == reference
    assert _upstream_view(ours) == _upstream_view(theirs)
    assert len(ours.upstream) == 1


def same_stream_and_history(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """A later turn of a conversation: the same stream, the same context sent upstream, the same stored messages."""
    same_stream(scenario, ours, theirs)
    assert [a.json() for a in ours.after] == [a.json() for a in theirs.after]


def _shape(value: Any) -> Any:
    """The key structure of a JSON value (dict keys, recursively; other values by type)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def _first_line(outcome: Outcome) -> list[str]:
    """The tokens before the first line break."""
    tokens = outcome.tokens
    return tokens[: tokens.index("\n")] if "\n" in tokens else tokens


def same_mock_grammar(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Mock: the same grammar and JSON shapes, the same provider, the same first line and token rules.

    The filler text is each implementation's own, so the tokens after the first line differ.
    """
    _streams(ours, theirs)
    assert ours.final.event == theirs.final.event == "done"
    assert {repr(_shape(f.data)) for f in ours.events[:-1]} == {repr(_shape(f.data)) for f in theirs.events[:-1]}
    assert _shape(ours.final.data) == _shape(theirs.final.data)
    assert ours.final.data["provider"] == theirs.final.data["provider"]
    assert _first_line(ours) == _first_line(theirs)
    mock = (scenario.request.json.get("params") or {}).get("mock") or {}
    for outcome in (ours, theirs):
        content = outcome.final.data["message"]["content"]
        assert len(content) >= max(250, min(8000, int(mock.get("targetChars", 1200))))
        assert outcome.final.data["usage"] == {"tokens": max(1, (len(content) + 3) // 4)}
        assert all(len(t) == 1 or not re.search(r"[ \n\t]", t) for t in outcome.tokens)


def same_error_event(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """A stream that ends in `error` with the same message (lean_chat adds a `code`) and no tokens."""
    _streams(ours, theirs)
    assert ours.final.event == theirs.final.event == "error"
    assert ours.final.data["error"]["message"] == theirs.final.data["error"]["message"]
    assert set(ours.final.data["error"]) - set(theirs.final.data["error"]) <= {"code"}
    assert ours.tokens == theirs.tokens == []


def _locations(outcome: Outcome) -> list[tuple[str, list[Any]]]:
    """The (type, loc) of every 422 detail entry."""
    return [(entry["type"], entry["loc"]) for entry in outcome.json()["detail"]]


def same_rejection(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """A refused request: the same status, and for a 422 the same error types and `detail` locations, in order."""
    assert ours.status == theirs.status, (ours.body, theirs.body)
    assert ours.headers["content-type"].startswith("application/json")
    if theirs.status == 422:
        assert _locations(ours) == _locations(theirs)
        assert [e["msg"] for e in ours.json()["detail"]] == [e["msg"] for e in theirs.json()["detail"]]
    else:
        assert ours.json() == theirs.json()


def same_listing(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """`GET /chat/conversations` after a turn: the same rows (times within a few seconds of each other)."""
    assert ours.status == theirs.status == 200
    mine, reference = ours.json(), theirs.json()
    assert _shape(mine) == _shape(reference)
    assert len(mine["conversations"]) == len(reference["conversations"]) == 1
    for row, other in zip(mine["conversations"], reference["conversations"], strict=True):
        # An additive key (docs/resume.md): the stream running into the conversation, none after the turn.
        assert row.pop("activeStreamId") is None
        assert _shape(row) == _shape(other)
        assert abs(row["updatedAt"] - other["updatedAt"]) < 10
        for key in ("createdAt", "updatedAt"):
            row.pop(key), other.pop(key)
    assert mine == reference


def _cors(outcome: Outcome) -> dict[str, str]:
    """The CORS headers of an answer."""
    return {k: v for k, v in outcome.headers.items() if k.startswith("access-control-")}


def same_cors(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """The same status and the same CORS headers (any origin, no credentials, by default)."""
    assert ours.status == theirs.status
    assert _cors(ours) == _cors(theirs)
    assert scenario.request.headers is not None
    assert _cors(ours)["access-control-allow-origin"] in ("*", scenario.request.headers["origin"])


def ours_keeps_the_default_conversation(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Deviation: without `conversationId` the turn lands in the user's default conversation, seen by history."""
    _streams(ours, theirs)
    user = scenario.request.json["userId"]
    assert ours.final.data["conversationId"] == f"default:{user}"
    assert re.fullmatch(r"[0-9a-f]{32}", theirs.final.data["conversationId"])
    our_history, their_history = ours.after[0].json(), theirs.after[0].json()
    assert [m["role"] for m in our_history["messages"]] == ["user", "assistant"]
    assert our_history["messages"][1]["content"] == ours.final.data["message"]["content"]
    assert their_history["messages"] == []


def ours_reports_provider_usage(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Deviation: `usage.tokens` is the provider's own output count when it sends one (plus input/output keys)."""
    _streams(ours, theirs)
    assert ours.tokens == theirs.tokens
    reply = scenario.replies[-1]
    content = theirs.final.data["message"]["content"]
    assert theirs.final.data["usage"] == {"tokens": max(1, (len(content) + 3) // 4)}
    usage = ours.final.data["usage"]
    assert usage["tokens"] == usage["outputTokens"] == reply.output_count()
    assert usage["inputTokens"] == reply.input_tokens


def ours_ends_with_error_on_a_mid_stream_failure(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Deviation: a provider error after some tokens ends the stream with `error`, not a truncated `done`."""
    _streams(ours, theirs)
    assert ours.tokens == theirs.tokens
    assert theirs.final.event == "done"
    assert ours.final.event == "error"
    model = scenario.request.json["params"]["model"]
    assert ours.final.data["error"]["message"].startswith(f"{scenario.provider} failed for model '{model}': ")
    assert scenario.replies[-1].error_message in ours.final.data["error"]["message"]


def ours_names_the_failure_without_urls_or_keys(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Both end in `error` naming the provider and model after the same retries; only ours keeps URLs and keys out.

    Deviation: the reference's detail is httpx's message with the request URL (for Gemini: the API key in it).
    """
    _streams(ours, theirs)
    model = scenario.request.json["params"]["model"]
    prefix = f"{scenario.provider} failed for model '{model}': "
    assert ours.final.event == theirs.final.event == "error"
    mine, reference = ours.final.data["error"]["message"], theirs.final.data["error"]["message"]
    assert mine.startswith(prefix) and reference.startswith(prefix)
    assert "http://" not in mine and API_KEY not in mine
    assert "http://" in reference
    assert len(ours.upstream) == len(theirs.upstream)
    if scenario.provider == "gemini":
        assert API_KEY in reference


def ours_keeps_the_gemini_key_out_of_the_url(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Deviation: the Gemini key travels in `x-goog-api-key`, never in the query string (which lands in logs)."""
    same_stream(scenario, ours, theirs)
    assert ours.key_in_url == [False]
    assert theirs.key_in_url == [True]


def ours_refuses_a_foreign_conversation(scenario: Scenario, ours: Outcome, theirs: Outcome) -> None:
    """Deviation: streaming into another user's conversation ends in `error` before any provider is called."""
    _streams(ours, theirs)
    assert ours.final.event == "error"
    assert ours.final.data["error"]["code"] == "conversation_forbidden"
    assert ours.tokens == []
    assert theirs.final.event == "done"


# The scenarios.


def _provider_scenarios() -> list[Scenario]:
    """Real-provider streams that must match token for token."""
    scenarios = []
    replies = {
        "short": Reply(tokens=("Hello", ",", " world", "!"), usage=False),
        "long": Reply(tokens=long_tokens(), usage=False),
        "tricky": Reply(tokens=TRICKY_TOKENS, usage=False),
    }
    for provider, model in MODELS.items():
        for size, reply in replies.items():
            user = f"{provider}-{size}"
            scenarios.append(
                Scenario(f"{provider}_{size}_reply", _stream(_body(user, model=model)), same_stream, provider, (reply,))
            )
        context = {
            "userId": f"{provider}-context",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": "First answer"},
                {"role": "user", "content": 'Second question with ünïcode and "quotes"'},
            ],
            "params": {"model": model},
        }
        scenarios.append(
            Scenario(f"{provider}_system_and_history", _stream(context), same_stream, provider, (Reply(usage=False),))
        )
    scenarios.append(
        Scenario(
            "gemini_chunks_that_repeat_the_text_so_far",
            _stream(_body("gemini-cumulative", model="gemini-2.0-flash")),
            same_stream,
            "gemini",
            (Reply(tokens=("One", " two", " three"), cumulative=True, usage=False),),
        )
    )
    scenarios.extend(_history_scenarios())
    return scenarios


def _history_scenarios() -> list[Scenario]:
    """A second turn in a named conversation: the client resends everything, or only its newest message."""
    reply = Reply(tokens=("Noted", "."), usage=False)
    scenarios = []
    for style, second in (
        ("full_resend", ["First", "Noted.", "Second"]),
        ("newest_only", ["Second"]),
    ):
        user, conversation = f"history-{style}", f"conv-{style}"
        roles = ["user", "assistant", "user"][-len(second) :]
        messages = [{"role": r, "content": c} for r, c in zip(roles, second, strict=True)]
        params = {"model": "gpt-4.1", "conversationId": conversation}
        first = {"userId": user, "messages": [{"role": "user", "content": "First"}], "params": params}
        scenarios.append(
            Scenario(
                f"history_merge_{style}",
                _stream({"userId": user, "messages": messages, "params": params}),
                same_stream_and_history,
                "openai",
                (reply,),
                setup=(_stream(first),),
                then=(Request("GET", "/chat/conversation", params={"userId": user, "conversationId": conversation}),),
            )
        )
    return scenarios


def _mock_scenarios() -> list[Scenario]:
    """Mock streams: same grammar and shapes, same first line."""
    fast = {"tokenDelayMs": 0}
    return [
        Scenario("mock_default", _stream(_body("mock-a", mock=fast)), same_mock_grammar, configured=False),
        Scenario(
            "mock_named_model_long",
            _stream(_body("mock-b", "Tell me a story", model="mock-large", mock={**fast, "targetChars": 3000})),
            same_mock_grammar,
            configured=False,
        ),
        Scenario(
            "mock_without_prefix_clamped",
            _stream(_body("mock-c", "  padded  ", mock={**fast, "includePrefix": False, "targetChars": 5})),
            same_mock_grammar,
            configured=False,
        ),
        Scenario(
            "fallback_to_mock_when_the_default_provider_fails",
            _stream(_body("fallback", mock=fast)),
            same_mock_grammar,
            "openai",
            (Reply(status=500),),
        ),
    ]


def _error_scenarios() -> list[Scenario]:
    """Errors: no key for an explicit model, and bad requests."""
    scenarios = [
        Scenario(f"no_key_for_{provider}", _stream(_body("nokey", model=model)), same_error_event, configured=False)
        for provider, model in MODELS.items()
    ]
    user = [{"role": "user", "content": "x"}]
    bad_streams: dict[str, Any] = {
        "empty_object": {},
        "empty_user": {"userId": "", "messages": user},
        "user_not_string": {"userId": 5, "messages": user},
        "messages_not_list": {"userId": "u", "messages": "hi"},
        "bad_role": {"userId": "u", "messages": [{"role": "robot", "content": "x"}]},
        "message_missing_fields": {"userId": "u", "messages": [{}]},
        "content_not_string": {"userId": "u", "messages": [{"role": "user", "content": 1}]},
        "params_not_object": {"userId": "u", "messages": user, "params": [1]},
        "meta_not_object": {"userId": "u", "messages": [{"role": "user", "content": "x", "meta": 3}]},
        "body_is_a_list": [1, 2],
    }
    for name, body in bad_streams.items():
        scenarios.append(Scenario(f"stream_422_{name}", _stream(body), same_rejection, configured=False))
    json_header = {"content-type": "application/json"}
    scenarios.append(
        Scenario(
            "stream_422_invalid_json",
            Request("POST", "/chat/stream", content=b"{not json", headers=json_header),
            same_rejection,
            configured=False,
        )
    )
    others = [
        ("history_without_user", Request("GET", "/chat/history")),
        ("conversations_bad_limit", Request("GET", "/chat/conversations", params={"userId": "u", "limit": "x"})),
        ("conversation_without_ids", Request("GET", "/chat/conversation")),
        ("clear_empty_user", Request("POST", "/chat/clear", json={"userId": ""})),
        ("create_without_user", Request("POST", "/chat/conversation/create", json={"title": "t"})),
        ("delete_without_id", Request("POST", "/chat/conversation/delete", json={"userId": "u"})),
        ("unknown_path", Request("GET", "/chat/nowhere")),
        ("wrong_method", Request("GET", "/chat/clear")),
    ]
    scenarios.extend(Scenario(f"rejects_{name}", request, same_rejection, configured=False) for name, request in others)
    return scenarios


_ALICE_CONVERSATION = {"userId": "alice", "conversationId": "alice-private"}


def _endpoint_scenarios() -> list[Scenario]:
    """The other endpoints and CORS."""
    turn = _stream(_body("lister", "A title\nover two lines", conversationId="listed", mock={"tokenDelayMs": 0}))
    origin = {"origin": "https://app.example"}
    preflight = {**origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    return [
        Scenario(
            "conversation_listing_after_a_turn",
            Request("GET", "/chat/conversations", params={"userId": "lister"}),
            same_listing,
            configured=False,
            setup=(turn,),
        ),
        Scenario("cors_preflight", Request("OPTIONS", "/chat/stream", headers=preflight), same_cors, configured=False),
        Scenario(
            "cors_on_a_stream",
            Request("POST", "/chat/stream", json=_body("cors", mock={"tokenDelayMs": 0}), headers=origin),
            same_cors,
            configured=False,
        ),
    ]


def _deviation_scenarios() -> list[Scenario]:
    """Where lean_chat differs on purpose (WIRE.md "Deviation"), holding it to its own rule."""
    fast = {"tokenDelayMs": 0}
    return [
        Scenario(
            "default_conversation_without_conversation_id",
            _stream(_body("memory", mock=fast)),
            ours_keeps_the_default_conversation,
            configured=False,
            then=(Request("GET", "/chat/history", params={"userId": "memory"}),),
            why="The reference invents a new conversation per request, so a client sending only its newest "
            "message loses all context and /chat/history never shows the turn.",
        ),
        Scenario(
            "usage_from_the_provider",
            _stream(_body("usage", model="gpt-4.1")),
            ours_reports_provider_usage,
            "openai",
            (Reply(tokens=("Counted", " by", " the", " provider"), input_tokens=21, output_tokens=9),),
            why="The provider's own count is the truth; the reference always estimates from the characters.",
        ),
        Scenario(
            "openai_error_chunk_mid_stream",
            _stream(_body("vllm", model="gpt-4.1")),
            ours_ends_with_error_on_a_mid_stream_failure,
            "openai",
            (Reply(tokens=("Part", " one", " two"), fail_after=2, error_message="engine died", usage=False),),
            why="The reference skips the error chunk and reports a cut reply as a complete one.",
        ),
        Scenario(
            "anthropic_overloaded_mid_stream",
            _stream(_body("overload", model="claude-3-5-sonnet")),
            ours_ends_with_error_on_a_mid_stream_failure,
            "anthropic",
            (Reply(tokens=("Part", " one", " two"), fail_after=2, error_message="Overloaded", usage=False),),
            why="The reference ignores Anthropic's `event: error` and reports a cut reply as a complete one.",
        ),
        *[
            Scenario(
                f"{provider}_failure_before_the_first_token",
                _stream(_body(f"fail-{provider}", model=model)),
                ours_names_the_failure_without_urls_or_keys,
                provider,
                (Reply(status=400, error_message="The model is not available."),),
                why="Error messages carry the provider's own words and status, never a URL or a key.",
            )
            for provider, model in MODELS.items()
        ],
        Scenario(
            "gemini_key_stays_out_of_the_url",
            _stream(_body("gemini-key", model="gemini-2.0-flash")),
            ours_keeps_the_gemini_key_out_of_the_url,
            "gemini",
            (Reply(tokens=("Key", " in", " a", " header"), usage=False),),
            why="A key in the query string lands in proxy and server logs.",
        ),
        Scenario(
            "foreign_conversation",
            _stream({**_body("mallory", model="mock"), "params": {"conversationId": "alice-private", "mock": fast}}),
            ours_refuses_a_foreign_conversation,
            configured=False,
            setup=(Request("POST", "/chat/conversation/create", json=_ALICE_CONVERSATION),),
            why="A conversation belongs to its creator; the reference silently drops the other user's turn.",
        ),
    ]


SCENARIOS: tuple[Scenario, ...] = (
    *_provider_scenarios(),
    *_mock_scenarios(),
    *_error_scenarios(),
    *_endpoint_scenarios(),
    *_deviation_scenarios(),
)


def scenario_named(name: str) -> Scenario:
    """The scenario with this name."""
    return next(s for s in SCENARIOS if s.name == name)
