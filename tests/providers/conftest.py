"""Provider tests: one fake upstream per provider under a real uvicorn for the session, lean_chat in front."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_server import fake_upstreams
from tests.support.providers import MODELS
from tests.support.upstreams import FakeUpstream


@pytest.fixture(scope="session")
def served_fakes() -> Iterator[dict[str, FakeUpstream]]:
    """The three fakes, each under its own uvicorn on loopback for the whole session."""
    with fake_upstreams() as fakes:
        yield fakes


@pytest.fixture(params=list(MODELS))
def upstream(request: pytest.FixtureRequest, served_fakes: dict[str, FakeUpstream]) -> FakeUpstream:
    """Each provider's fake in turn, reset (a default successful reply)."""
    fake = served_fakes[request.param]
    fake.reset()
    return fake


@pytest.fixture
def openai_fake(served_fakes: dict[str, FakeUpstream]) -> FakeUpstream:
    """The OpenAI fake, reset."""
    served_fakes["openai"].reset()
    return served_fakes["openai"]


@pytest.fixture
def anthropic_fake(served_fakes: dict[str, FakeUpstream]) -> FakeUpstream:
    """The Anthropic fake, reset."""
    served_fakes["anthropic"].reset()
    return served_fakes["anthropic"]


@pytest.fixture
def gemini_fake(served_fakes: dict[str, FakeUpstream]) -> FakeUpstream:
    """The Gemini fake, reset."""
    served_fakes["gemini"].reset()
    return served_fakes["gemini"]
