"""What the fake upstreams check in a request before they answer: the transcript, the tools and the reasoning knob.

Each check returns None for a valid request (one without a transcript too: tests of the pool post bare
bodies), else the message the real API would give with its 400 (the fakes wrap it in the provider's error
format). The rules are the real APIs' (as their documentation and error messages state them), a little stricter
where that makes our mistakes visible:

- OpenAI: an assistant message with `tool_calls` is followed at once by one `role: "tool"` message per call id;
  a tool message answers a call of the assistant message before it; `reasoning_effort` is one of the known levels;
  every tool is `{"type": "function", "function": {"name", "parameters": {object schema}}}`.
- Anthropic: every `tool_use` is answered by a `tool_result` in the next message (consecutive messages of one
  role count as one turn, as the API combines them); a `thinking` block carries the signature the fake gave for
  that very text and model (so a modified or moved block fails), a `redacted_thinking` block the data the fake
  gave for that model; with thinking on, a request that goes on with a tool loop (it ends with tool results) has the
  assistant message before them start with a thinking block; `budget_tokens` is at least 1024 and below `max_tokens`.
- Gemini: a model content with `functionCall` parts is followed by a user content with as many `functionResponse`
  parts; every `thoughtSignature` is one the fake gave for that part (a call's name, or text) and model; for
  Gemini 3 models the first call of each model step of the current turn carries one (the real API refuses
  the turn without it).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = [
    "anthropic_problem",
    "gemini_problem",
    "gemini_signature",
    "openai_problem",
    "redacted_data",
    "thinking_signature",
]

_SECRET = "fake-upstream-signing"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OPENAI_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})


def _mac(*parts: str) -> str:
    """A short keyed digest of the parts (what a signature proves: the fake made it for exactly this)."""
    return hashlib.sha256("\x00".join((_SECRET, *parts)).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def thinking_signature(model: str, thinking: str) -> str:
    """The signature the Anthropic fake gives a thinking block of `model` with this text."""
    return "sig-" + _mac("thinking", model, thinking)


def redacted_data(model: str, nonce: str) -> str:
    """The opaque data of a redacted thinking block the Anthropic fake makes for `model`."""
    return f"redacted-{nonce}-{_mac('redacted', model, nonce)}"


def gemini_signature(model: str, part: str) -> str:
    """The thoughtSignature the Gemini fake gives a part of `model`: `part` is `call:NAME` or `text`."""
    return "ts-" + _mac("gemini", model, part)


def _tools_problem(tools: Any, check: Any) -> str | None:
    """The first bad tool definition's message, if any."""
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools:
        return "tools: must be a non-empty array"
    for i, tool in enumerate(tools):
        problem = check(tool) if isinstance(tool, dict) else "must be an object"
        if problem:
            return f"tools.{i}: {problem}"
    return None


def _schema_problem(schema: Any) -> str | None:
    """What is wrong with a tool's parameter schema (it must describe an object)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "the parameters schema must be a JSON Schema of type 'object'"
    return None


def _name_problem(name: Any) -> str | None:
    """What is wrong with a tool name."""
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        return f"invalid tool name {name!r}: must match ^[a-zA-Z0-9_-]{{1,64}}$"
    return None


# OpenAI chat completions.


def _openai_tool(tool: dict[str, Any]) -> str | None:
    """One OpenAI tool definition's problem."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        return "expected {'type': 'function', 'function': {...}}"
    return _name_problem(function.get("name")) or _schema_problem(function.get("parameters"))


def openai_problem(body: Any) -> str | None:
    """Why OpenAI would refuse this chat completions request, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("messages", []), list):
        return "'messages' must be an array"
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in OPENAI_EFFORTS:
        return f"Invalid value: '{effort}'. Supported values are: 'low', 'medium', and 'high'."
    problem = _tools_problem(body.get("tools"), _openai_tool)
    if problem:
        return problem
    waiting: list[str] = []  # call ids of the last assistant message still without a tool message
    answerable: set[str] = set()
    for i, message in enumerate(body.get("messages", [])):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in answerable:
                return (
                    f"Invalid parameter: messages.[{i}]: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            if not isinstance(message.get("content"), str | list):
                return f"messages.[{i}].content: expected a string"
            answerable.discard(call_id)
            if call_id in waiting:
                waiting.remove(call_id)
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}"
            )
        answerable = set()
        if role == "assistant" and message.get("tool_calls"):
            for j, call in enumerate(message["tool_calls"]):
                function = call.get("function") if isinstance(call, dict) else None
                if (
                    not isinstance(function, dict)
                    or not isinstance(call.get("id"), str)
                    or not call["id"]
                    or call.get("type") != "function"
                    or not isinstance(function.get("name"), str)
                    or not isinstance(function.get("arguments"), str)
                ):
                    return f"messages.[{i}].tool_calls.[{j}]: expected id, type 'function', name and arguments"
                waiting.append(call["id"])
                answerable.add(call["id"])
        elif role == "assistant" and message.get("content") is None:
            return f"messages.[{i}]: an assistant message needs content or tool_calls"
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(waiting)}"
        )
    return None


# Anthropic Messages.


def _anthropic_tool(tool: dict[str, Any]) -> str | None:
    """One Anthropic tool definition's problem."""
    return _name_problem(tool.get("name")) or _schema_problem(tool.get("input_schema"))


def _anthropic_thinking(body: dict[str, Any]) -> tuple[bool, str | None]:
    """(thinking on, the problem with its settings)."""
    thinking = body.get("thinking")
    if thinking is None or (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        return False, None
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return False, "thinking: expected {'type': 'enabled', 'budget_tokens': N} or {'type': 'disabled'}"
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return True, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or budget >= max_tokens:
        return True, "`max_tokens` must be greater than `thinking.budget_tokens`."
    return True, None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's content as blocks (a string is one text block)."""
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def anthropic_problem(body: Any) -> str | None:
    """Why Anthropic would refuse this messages request, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("messages", []), list):
        return "messages: Input should be a valid list"
    model = str(body.get("model", ""))
    thinking, problem = _anthropic_thinking(body)
    problem = problem or _tools_problem(body.get("tools"), _anthropic_tool)
    if problem:
        return problem
    messages = body.get("messages", [])
    # A request that goes on with a tool loop ends with the results of the assistant message before them: with
    # thinking on, that message must start with its thinking.
    last = _blocks(messages[-1]) if messages else []
    continuing = len(messages) - 2 if any(b.get("type") == "tool_result" for b in last) else -1
    for i, message in enumerate(messages):
        blocks = _blocks(message)
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "thinking":
                if role != "assistant":
                    return f"messages.{i}.content.{j}: thinking blocks belong to assistant messages"
                if block.get("signature") != thinking_signature(model, str(block.get("thinking", ""))):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            elif kind == "redacted_thinking":
                data = str(block.get("data", ""))
                nonce = data.split("-")[1] if data.count("-") == 2 else ""
                if role != "assistant" or data != redacted_data(model, nonce):
                    return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
        uses = [str(b.get("id", "")) for b in blocks if b.get("type") == "tool_use"]
        if uses:
            if thinking and i == continuing and blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                return (
                    f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
                    "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
                )
            following = messages[i + 1] if i + 1 < len(messages) else None
            answered = {str(b.get("tool_use_id")) for b in _blocks(following or {}) if b.get("type") == "tool_result"}
            missing = [u for u in uses if u not in answered]
            if missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                    "in the next message."
                )
        results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
        if results:
            before = _blocks(messages[i - 1]) if i else []
            called = {str(b.get("id")) for b in before if b.get("type") == "tool_use"}
            unknown = [r for r in results if r not in called]
            if unknown:
                return (
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {unknown[0]}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
    return None


# Gemini.


def _gemini_tool(tool: dict[str, Any]) -> str | None:
    """One Gemini tool (a list of function declarations)'s problem."""
    declarations = tool.get("functionDeclarations")
    if not isinstance(declarations, list) or not declarations:
        return "expected functionDeclarations"
    for declaration in declarations:
        if not isinstance(declaration, dict):
            return "a function declaration must be an object"
        schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
        problem = _name_problem(declaration.get("name")) or _schema_problem(schema)
        if problem:
            return problem
    return None


def _gemini_thinking(body: dict[str, Any]) -> str | None:
    """The problem with `generationConfig.thinkingConfig`, if any."""
    config = (body.get("generationConfig") or {}).get("thinkingConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        return "generationConfig.thinkingConfig: expected an object"
    if "thinkingBudget" in config and "thinkingLevel" in config:
        return "thinking_budget and thinking_level are not supported together."
    budget = config.get("thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or budget < -1):
        return "generationConfig.thinkingConfig.thinkingBudget: expected an integer >= -1"
    level = config.get("thinkingLevel")
    if level is not None and level not in ("minimal", "low", "medium", "high"):
        return f"generationConfig.thinkingConfig.thinkingLevel: invalid value {level!r}"
    if "includeThoughts" in config and not isinstance(config["includeThoughts"], bool):
        return "generationConfig.thinkingConfig.includeThoughts: expected a boolean"
    return None


def gemini_problem(body: Any, model: str) -> str | None:
    """Why Gemini would refuse this streamGenerateContent request for `model`, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("contents", []), list):
        return "contents: expected a list"
    problem = _gemini_thinking(body) or _tools_problem(body.get("tools"), _gemini_tool)
    if problem:
        return problem
    contents = body.get("contents", [])
    # The current turn: from the last user content that carries text (not function responses).
    current = 0
    for i, content in enumerate(contents):
        parts = content.get("parts") or []
        if content.get("role") == "user" and any("text" in p for p in parts):
            current = i
    for i, content in enumerate(contents):
        parts = [p for p in content.get("parts") or [] if isinstance(p, dict)]
        if not parts:
            return f"contents.{i}.parts: must not be empty"
        for j, part in enumerate(parts):
            signature = part.get("thoughtSignature")
            if signature is None:
                continue
            what = "call:" + str(part["functionCall"].get("name")) if "functionCall" in part else "text"
            if content.get("role") != "model" or signature != gemini_signature(model, what):
                return f"Corrupted thought signature. (contents.{i}.parts.{j})"
        calls = [p for p in parts if "functionCall" in p]
        if not calls:
            continue
        if content.get("role") != "model":
            return f"contents.{i}: function calls belong to model contents"
        if model.startswith("gemini-3") and i >= current and "thoughtSignature" not in calls[0]:
            return (
                f"Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                f"work correctly. Additional data, function call `{calls[0]['functionCall'].get('name')}` , "
                f"position {i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures"
            )
        following = contents[i + 1] if i + 1 < len(contents) else {}
        responses = [p for p in following.get("parts") or [] if isinstance(p, dict) and "functionResponse" in p]
        if len(responses) != len(calls):
            return (
                "Please ensure that the number of function response parts is equal to the number of function "
                "call parts of the function call turn."
            )
    return None
