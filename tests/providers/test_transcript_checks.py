"""The fakes' transcript checks refuse what the real APIs refuse (so a test against a fake catches our mistakes)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.transcript_checks import (
    anthropic_problem,
    gemini_problem,
    gemini_signature,
    openai_problem,
    redacted_data,
    thinking_signature,
)

CLAUDE = "claude-sonnet-4-5"
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def openai(*messages: dict[str, Any], **extra: Any) -> str | None:
    """The OpenAI check of these messages."""
    return openai_problem({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}, *messages], **extra})


def test_openai() -> None:
    answered = (
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
    )
    assert openai(*answered) is None
    assert "did not have response messages: c1" in str(openai(answered[0], {"role": "user", "content": "?"}))
    assert "must be a response to a preceeding message" in str(
        openai({"role": "tool", "tool_call_id": "c9", "content": "1"})
    )
    assert "Invalid value: 'extreme'" in str(openai(reasoning_effort="extreme"))
    assert "tools.0" in str(openai(tools=[{"type": "function", "function": {"name": "bad name", "parameters": {}}}]))


def claude(*messages: dict[str, Any], **extra: Any) -> str | None:
    """The Anthropic check of these messages."""
    body = {"model": CLAUDE, "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}, *messages], **extra}
    return anthropic_problem(body)


def test_anthropic() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": thinking_signature(CLAUDE, "hmm")}
    use = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "1"}]}
    on = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert claude({"role": "assistant", "content": [thinking, use]}, result, **on) is None
    assert "Expected `thinking` or `redacted_thinking`" in str(
        claude({"role": "assistant", "content": [use]}, result, **on)
    )
    assert claude({"role": "assistant", "content": [use]}, result) is None  # thinking off: no thinking needed
    assert "without `tool_result` blocks" in str(
        claude({"role": "assistant", "content": [use]}, {"role": "user", "content": "?"})
    )
    changed = {**thinking, "thinking": "hmm!"}
    assert "Invalid `signature`" in str(claude({"role": "assistant", "content": [changed, use]}, result))
    assert "Invalid `signature`" in str(
        anthropic_problem({"model": "claude-opus-4-1", "messages": [{"role": "assistant", "content": [thinking]}]})
    )
    redacted = {"type": "redacted_thinking", "data": redacted_data(CLAUDE, "7")}
    assert claude({"role": "assistant", "content": [redacted, {"type": "text", "text": "x"}]}) is None
    assert "Invalid `data`" in str(claude({"role": "assistant", "content": [{**redacted, "data": "redacted-7-0"}]}))


@pytest.mark.parametrize(("budget", "max_tokens", "ok"), [(1024, 4096, True), (1000, 4096, False), (4096, 4096, False)])
def test_anthropic_thinking_budget(budget: int, max_tokens: int, ok: bool) -> None:
    body = {
        "model": CLAUDE,
        "max_tokens": max_tokens,
        "messages": [],
        "thinking": {"type": "enabled", "budget_tokens": budget},
    }
    assert (anthropic_problem(body) is None) is ok


def test_gemini() -> None:
    model = "gemini-3-pro-preview"
    call = {"functionCall": {"name": "f", "args": {}}}
    signed = {**call, "thoughtSignature": gemini_signature(model, "call:f")}
    answer = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": 1}}}]}

    def contents(*items: dict[str, Any]) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, *items]}

    assert gemini_problem(contents({"role": "model", "parts": [signed]}, answer), model) is None
    assert "missing a thought_signature" in str(
        gemini_problem(contents({"role": "model", "parts": [call]}, answer), model)
    )
    assert gemini_problem(contents({"role": "model", "parts": [call]}, answer), "gemini-2.5-flash") is None
    assert "Corrupted thought signature" in str(
        gemini_problem(contents({"role": "model", "parts": [signed]}, answer), "gemini-3-flash")
    )
    assert "number of function response parts" in str(
        gemini_problem(contents({"role": "model", "parts": [signed, call]}, answer), model)
    )
    both = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "low"}}, "contents": []}
    assert "not supported together" in str(gemini_problem(both, model))
