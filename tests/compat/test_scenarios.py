"""The conformance scenarios of compat/, run against lean_chat and fastapi-ai-chat 1.0.2 side by side."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from compat.kit import Kit, Outcome, Scenario, running_kit
from compat.node import node_stream
from compat.scenarios import (
    SCENARIOS,
    same_mock_grammar,
    same_rejection,
    same_stream,
    scenario_named,
)


@pytest.fixture(scope="module")
def kit() -> Iterator[Kit]:
    """The shared fake upstreams, lean_chat and the reference, with provider keys and without."""
    with running_kit() as running:
        yield running


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(kit: Kit, scenario: Scenario) -> None:
    kit.check(scenario)


def test_every_deviation_says_why_and_every_provider_is_covered() -> None:
    deviations = [s for s in SCENARIOS if s.why]
    assert len(deviations) >= 8
    assert all(s.check is not same_stream for s in deviations)
    covered = {s.provider for s in SCENARIOS if s.check is same_stream}
    assert covered == {"openai", "anthropic", "gemini"}


def _tampered(outcome: Outcome, old: bytes, new: bytes) -> Outcome:
    """A copy of an answer with some bytes replaced."""
    assert old in outcome.body
    return dataclasses.replace(outcome, body=outcome.body.replace(old, new))


def _again(name: str) -> Scenario:
    """A scenario run a second time, as a new user (the first run's history must not be part of it)."""
    scenario = scenario_named(name)
    body = {**scenario.request.json, "userId": scenario.request.json["userId"] + "-again"}
    return dataclasses.replace(scenario, request=dataclasses.replace(scenario.request, json=body))


def test_the_checks_notice_a_difference(kit: Kit) -> None:
    tricky = _again("openai_tricky_reply")
    ours, theirs = kit.run(tricky)
    tricky.check(tricky, ours, theirs)
    with pytest.raises(AssertionError):
        tricky.check(tricky, _tampered(ours, "Grüße".encode(), b"Grusse"), theirs)
    with pytest.raises(AssertionError):
        tricky.check(tricky, _tampered(ours, b'"provider":"openai:', b'"provider":"mock:'), theirs)

    mock = _again("mock_default")
    ours, theirs = kit.run(mock)
    with pytest.raises(AssertionError):
        same_mock_grammar(mock, _tampered(ours, b'{"type":"token",', b'{"type":"token","extra":1,'), theirs)
    with pytest.raises(AssertionError):
        same_mock_grammar(mock, _tampered(ours, b'"provider":"mock:gpt-4.1"', b'"provider":"mock:other"'), theirs)

    invalid = scenario_named("stream_422_bad_role")
    ours, theirs = kit.run(invalid)
    with pytest.raises(AssertionError):
        same_rejection(invalid, _tampered(ours, b'"role"]', b'"rolle"]'), theirs)


@pytest.mark.node
def test_the_node_client_reads_both_implementations_alike(kit: Kit) -> None:
    message = {"role": "user", "content": "Hi 👋"}
    body = {"userId": "node-both", "messages": [message], "params": {"mock": {"tokenDelayMs": 0}}}
    urls = {name: kit.sides[(name, False)].url + "/chat/stream" for name in ("lean_chat", "reference")}
    seen = {name: node_stream(url, body) for name, url in urls.items()}
    for stats in seen.values():
        assert stats["status"] == 200 and stats["error"] is None
        assert "".join(stats["tokens"]) == stats["done"]["message"]["content"]
        assert stats["tokens"][:7] == ["Mock", " ", "reply", " ", "(mock):", " ", "Hi"]
    assert seen["lean_chat"]["done"]["provider"] == seen["reference"]["done"]["provider"] == "mock:gpt-4.1"
    assert set(seen["lean_chat"]["done"]) == set(seen["reference"]["done"])
