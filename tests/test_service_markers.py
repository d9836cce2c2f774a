"""Tests that reach PostgreSQL, Redis, Chromium or Node carry the service's marker, so that `-m 'not <marker>'`
leaves them out: `tests.support.services` and the hooks of tests/conftest.py hold this; these tests hold them."""

from __future__ import annotations

import pytest

from tests.support.services import FIXTURES, MARKERS, needs, unmarked


def test_every_service_marker_is_registered(request: pytest.FixtureRequest) -> None:
    registered = {line.split(":", 1)[0] for line in request.config.getini("markers")}
    assert set(MARKERS) <= registered, set(MARKERS) - registered
    assert set(FIXTURES.values()) <= set(MARKERS)


def test_a_test_reaching_a_service_without_its_marker_fails_saying_so(request: pytest.FixtureRequest) -> None:
    for marker in MARKERS:
        with pytest.raises(pytest.fail.Exception, match=f"is not marked `{marker}`"):
            needs(marker)
    request.applymarker(pytest.mark.redis)
    needs("redis")  # marked now: no failure


def test_a_test_asking_for_a_service_fixture_without_its_marker_is_named(request: pytest.FixtureRequest) -> None:
    names: list[str] = request.node.fixturenames
    assert unmarked(request.node) == []  # it asks for none of them
    names.append("postgres_url")
    try:
        assert unmarked(request.node) == ["postgres_url"]
        request.applymarker(pytest.mark.postgres)
        assert unmarked(request.node) == []
    finally:
        names.remove("postgres_url")
