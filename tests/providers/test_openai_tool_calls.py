"""The gathering of OpenAI tool call fragments, as each kind of server sends them."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from lean_chat.providers.openai_tool_calls import ToolCallDelta, ToolCallGatherer


def fragments(*raw: dict[str, Any]) -> list[ToolCallDelta]:
    """Fragments as decoded from a chunk."""
    return msgspec.convert(list(raw), list[ToolCallDelta])


def gathered(*chunks: list[ToolCallDelta], cut: bool = False) -> list[tuple[str, str, str]]:
    """The calls gathered from these chunks: (id, name, arguments)."""
    gatherer = ToolCallGatherer()
    for chunk in chunks:
        gatherer.take(chunk)
    return [(c.id, c.name, c.args_json) for c in gatherer.complete(cut)]


def test_an_id_repeated_on_every_fragment() -> None:
    chunks = [
        fragments({"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}),
        fragments({"index": 0, "id": "a", "function": {"arguments": ":1}"}}),
        fragments({"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}),
    ]
    assert gathered(*chunks) == [("a", "f", '{"x":1}'), ("b", "g", "{}")]


def test_an_id_that_comes_after_the_first_fragment() -> None:
    chunks = [
        fragments({"index": 0, "function": {"name": "f", "arguments": "{"}}),
        fragments({"index": 0, "id": "late", "function": {"arguments": "}"}}),
    ]
    assert gathered(*chunks) == [("late", "f", "{}")]


def test_several_calls_in_one_chunk_and_the_name_sent_again() -> None:
    chunk = fragments(
        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}},
        {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}},
        {"index": 1, "function": {"name": "g", "arguments": "}"}},
    )
    assert gathered(chunk) == [("a", "f", "{}"), ("b", "g", "{}")]


def test_cut_arguments_are_dropped_only_when_the_reply_was_cut() -> None:
    chunk = fragments({"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": '}})
    assert gathered(chunk) == [("a", "f", '{"x": ')]
    assert gathered(chunk, cut=True) == []


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": st.integers(0, 3) | st.none(),
                    "id": st.sampled_from(["a", "b", ""]) | st.none(),
                    "function": st.fixed_dictionaries(
                        {}, optional={"name": st.sampled_from(["f", "g"]) | st.none(), "arguments": st.text(max_size=4)}
                    ),
                },
            ),
            max_size=3,
        ),
        max_size=6,
    )
)
def test_any_fragments_give_calls_with_ids_and_every_argument_piece_once(chunks: list[list[dict[str, Any]]]) -> None:
    calls = gathered(*(fragments(*chunk) for chunk in chunks))
    assert all(call_id for call_id, _, _ in calls)
    pieces = [f.get("function", {}).get("arguments") or "" for chunk in chunks for f in chunk]
    assert sorted("".join(args for _, _, args in calls)) == sorted("".join(pieces))
