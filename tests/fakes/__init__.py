"""Fake servers for tests and benchmarks: upstream model providers speaking their real streaming formats."""

from tests.fakes.upstreams import (
    API_KEY,
    FakeAnthropic,
    FakeGemini,
    FakeOpenAI,
    FakeUpstream,
    Received,
    Reply,
    refused_url,
)

__all__ = [
    "API_KEY",
    "FakeAnthropic",
    "FakeGemini",
    "FakeOpenAI",
    "FakeUpstream",
    "Received",
    "Reply",
    "refused_url",
]
