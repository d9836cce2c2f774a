"""The side-by-side runner: the same request to lean_chat and to the reference, with the same upstreams behind both."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.frames import Frame, parse_frames
from tests.support.live_server import LiveServer
from tests.support.upstreams import Received, Reply

from .servers import ReferenceServer, Upstreams, lean_server

__all__ = ["Kit", "Outcome", "Request", "Scenario", "Side", "running_kit"]


@dataclass(frozen=True)
class Request:
    """One HTTP request of a scenario."""

    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


@dataclass
class Outcome:
    """What one implementation answered, and what the upstream saw meanwhile."""

    status: int
    headers: httpx.Headers
    body: bytes
    upstream: list[Received] = field(default_factory=list)
    key_in_url: list[bool] = field(default_factory=list)
    after: list[Outcome] = field(default_factory=list)

    @property
    def is_stream(self) -> bool:
        """True for a Server-Sent Events answer."""
        content_type: str = self.headers.get("content-type", "")
        return content_type.startswith("text/event-stream")

    @property
    def frames(self) -> list[Frame]:
        """The SSE frames (comments included)."""
        return parse_frames(self.body)

    @property
    def events(self) -> list[Frame]:
        """The SSE frames that carry an event."""
        return [f for f in self.frames if f.event is not None]

    @property
    def tokens(self) -> list[str]:
        """The `token` strings, in order."""
        return [f.data["token"] for f in self.events if f.event == "token"]

    @property
    def final(self) -> Frame:
        """The last event (`done` or `error`)."""
        return self.events[-1]

    def json(self) -> Any:
        """The JSON body."""
        return httpx.Response(self.status, content=self.body).json()


Check = Callable[["Scenario", Outcome, Outcome], None]


@dataclass(frozen=True)
class Scenario:
    """A request sent to both implementations, and the check that compares their answers.

    `provider` names the fake upstream scripted with `replies` (both sides get the same script, which the
    `setup` requests use too: the last reply repeats);
    `configured` picks the pair that has provider keys (False: the pair with none); `setup` runs first on
    each side and `then` after it (their answers land in `Outcome.after`); `why` explains a deliberate
    deviation, where the check holds lean_chat to its own documented behaviour instead of the reference's.
    """

    name: str
    request: Request
    check: Check
    provider: str | None = None
    replies: tuple[Reply, ...] = ()
    configured: bool = True
    setup: tuple[Request, ...] = ()
    then: tuple[Request, ...] = ()
    why: str = ""


@dataclass
class Side:
    """One implementation under test."""

    name: str
    url: str


class Kit:
    """The running servers: the shared upstreams, and lean_chat and the reference with keys and without."""

    def __init__(self, upstreams: Upstreams, sides: dict[tuple[str, bool], Side]) -> None:
        self.upstreams = upstreams
        self.sides = sides
        self.http = httpx.Client(timeout=30)

    def send(self, side: Side, request: Request) -> Outcome:
        """One request to one side."""
        response = self.http.request(
            request.method,
            side.url + request.path,
            json=request.json,
            content=request.content,
            headers=request.headers,
            params=request.params,
        )
        return Outcome(response.status_code, response.headers, response.content)

    def run(self, scenario: Scenario) -> tuple[Outcome, Outcome]:
        """Run the scenario on lean_chat, then on the reference; return (ours, theirs)."""
        outcomes = []
        for name in ("lean_chat", "reference"):
            side = self.sides[(name, scenario.configured)]
            fake = self.upstreams.fake(scenario.provider) if scenario.provider else None
            if fake is not None:
                fake.queue(*scenario.replies)
            for request in scenario.setup:
                self.send(side, request)
            seen, doors = (len(fake.received) if fake else 0), len(self.upstreams.gemini_door.key_in_url)
            outcome = self.send(side, scenario.request)
            if fake is not None:
                outcome.upstream = fake.received[seen:]
                outcome.key_in_url = self.upstreams.gemini_door.key_in_url[doors:]
            outcome.after = [self.send(side, request) for request in scenario.then]
            outcomes.append(outcome)
        return outcomes[0], outcomes[1]

    def check(self, scenario: Scenario) -> None:
        """Run the scenario and apply its check (raises AssertionError on a difference)."""
        ours, theirs = self.run(scenario)
        scenario.check(scenario, ours, theirs)


@contextmanager
def running_kit() -> Iterator[Kit]:
    """Start the upstreams, two lean_chat servers and two reference processes; stop them all afterwards."""
    with tempfile.TemporaryDirectory(prefix="lean-chat-compat-") as folder:
        upstreams = Upstreams().start()
        references: list[ReferenceServer] = []
        leans: list[LiveServer] = []
        try:
            references = [
                ReferenceServer(os.path.join(folder, "reference-keys.sqlite3"), upstreams.env()),
                ReferenceServer(os.path.join(folder, "reference-bare.sqlite3"), {}),
            ]
            leans = [
                lean_server(os.path.join(folder, "lean-keys.sqlite3"), upstreams),
                lean_server(os.path.join(folder, "lean-bare.sqlite3"), None),
            ]
            for reference in references:
                reference.wait()
            sides = {
                ("lean_chat", True): Side("lean_chat", leans[0].url),
                ("lean_chat", False): Side("lean_chat", leans[1].url),
                ("reference", True): Side("reference", references[0].url),
                ("reference", False): Side("reference", references[1].url),
            }
            kit = Kit(upstreams, sides)
            try:
                yield kit
            finally:
                kit.http.close()
        finally:
            for server in leans:
                server.stop()
            for reference in references:
                reference.stop()
            upstreams.stop()
