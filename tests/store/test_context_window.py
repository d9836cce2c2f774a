"""The context cap kept incrementally (ContextWindow) equals the cap computed over the whole conversation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lean_chat.store.base import StoredMessage
from lean_chat.store.history import ContextWindow, cap_context

_messages = st.lists(
    st.builds(
        StoredMessage,
        st.sampled_from(["user", "assistant", "assistant", "user", "system"]),
        st.text(alphabet="ab", max_size=60),
    ),
    max_size=40,
)


@given(batches=st.lists(_messages, min_size=1, max_size=8), cap=st.integers(min_value=0, max_value=150))
@settings(max_examples=300, deadline=None)
def test_the_window_equals_the_cap_of_everything_appended(batches: list[list[StoredMessage]], cap: int) -> None:
    window = ContextWindow(cap)
    everything: list[StoredMessage] = []
    for batch in batches:
        window.extend(batch)
        everything += batch
        assert window.messages() == cap_context(everything, cap)
        assert window.chars == sum(len(m.content) for m in window.messages())
        twin = window.copy()
        twin.extend([StoredMessage("user", "x" * 10)])
        assert window.messages() == cap_context(everything, cap)  # the copy is independent
