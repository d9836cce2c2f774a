"""The README's example holds: its curl body gives the frames and `done` it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apps import in_process
from tests.support.frames import check_grammar, parse_frames

pytestmark = pytest.mark.anyio

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


async def test_curl_example_answers_as_shown(client: httpx.AsyncClient) -> None:
    body = json.loads(re.search(r"-d '(\{\"userId\":\"alice\".*?\})'\n", README).group(1))  # type: ignore[union-attr]
    shown = parse_frames(re.search(r"```\n(event: token\n.*?)```", README, re.S).group(1).replace("...\n\n", ""))  # type: ignore[union-attr]
    response = await client.post("/chat/stream", json=body)
    frames = parse_frames(response.content)
    done = check_grammar(frames)
    assert frames[0].data == shown[0].data
    expected = shown[-1].data
    assert done.data["provider"] == expected["provider"]
    assert done.data["usage"] == expected["usage"]
    assert done.data["conversationId"] == expected["conversationId"]
    assert done.data["message"]["content"].startswith(expected["message"]["content"].rstrip("."))
    history = (await client.get("/chat/history", params={"userId": "alice"})).json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"]


def _shell_block_after(heading: str) -> str:
    """The first `sh` code block after a line of the README."""
    found = re.search(re.escape(heading) + r".*?```sh\n(.*?)\n```", README, re.S)
    assert found is not None, heading
    return found.group(1).strip()


def test_readme_test_command_alone_installs_what_tests_need() -> None:
    # A fresh clone once failed the README's test command: only .ci/run installed Chromium.
    root = Path(__file__).parent.parent
    command = _shell_block_after("Install and run the tests")
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines(), "`.ci/run` must run exactly the README's test command"
    steps = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert steps[-1] == command, "`.ci/run` does nothing after (or instead of) the README's command"
    script = (root / "scripts" / "test").read_text(encoding="utf-8")
    assert script.index("scripts/system-deps") < script.index("-m pytest"), "system packages first, then the tests"
    deps = (root / "scripts" / "system-deps").read_text(encoding="utf-8")
    assert "chromium" in deps and "node" in deps


def test_several_instances_on_one_host_each_get_their_own_port() -> None:
    # The command once had no --port: run twice on one host, the second instance hit a taken port.
    command = _shell_block_after("## Running several instances")
    ports = re.findall(r"lean-chat serve\b[^\n]*?--port (\d+)", command)
    assert command.count("lean-chat serve") == len(ports) >= 2
    assert len(set(ports)) == len(ports)


def test_the_monitoring_section_says_metrics_need_their_extra() -> None:
    # It read as if `lean-chat serve` always served /metrics; the install-and-serve command has no metrics extra.
    section = README.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    serve_install = _shell_block_after("Install and serve")
    assert "metrics" not in serve_install
    first_paragraph = section.strip().split("\n\n", 1)[0]
    assert "pip install -e '.[metrics]'" in first_paragraph and "404" in first_paragraph


def test_every_documented_uvicorn_command_names_lean_chats_loop() -> None:
    # uvicorn's default loop (uvloop) accepts one connection per loop turn: a crowd copied from the docs waited seconds.
    root = Path(__file__).parent.parent
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    commands = [
        (page.name, command)
        for page in pages
        for command in re.findall(r"uvicorn lean_chat\.[\w.]+:\w+[^`\n]*", page.read_text(encoding="utf-8"))
    ]
    assert any(name == "README.md" for name, _ in commands), "the README shows how to serve under plain uvicorn"
    for name, command in commands:
        assert "--loop lean_chat.server.loop:new_event_loop" in command, f"{name}: {command}"


async def test_the_tools_example_app_answers_as_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASTAPI_AI_CHAT_SQLITE_PATH", str(tmp_path / "readme.sqlite3"))  # not in the working folder
    section = README[README.index("## Tools and reasoning") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    body = json.loads(re.search(r"-d '(\{.*?\})'\n", section).group(1))  # type: ignore[union-attr]
    shown = parse_frames(re.search(r"```\n(event: reasoning\n.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    async with in_process(namespace["app"]) as http:
        response = await http.post("/chat/stream", json=body)
    frames = parse_frames(response.content)
    done = check_grammar(frames, opted_in=True)
    assert [f.data for f in frames[: len(shown)]] == [f.data for f in shown]
    assert [p["type"] for p in done.data["message"]["parts"]] == ["reasoning", "tool_call", "tool_result", "text"]
