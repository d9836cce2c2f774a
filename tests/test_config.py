"""Settings from keyword arguments and from the environment (WIRE.md's names first, then LEAN_CHAT_*)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from lean_chat import Settings
from lean_chat.config import _ENV_NAMES


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.configured_providers() == []
    assert settings.default_model == "gpt-4.1"
    assert settings.heartbeat_seconds == 15
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.send_timeout_seconds == 30
    assert (settings.openai_max_retries, settings.openai_retry_base_delay_ms, settings.openai_retry_max_delay_ms) == (
        2,
        500,
        8000,
    )


def test_first_name_wins_and_blank_values_are_unset() -> None:
    settings = Settings.from_env(
        {"OPENAI_API_KEY": "first", "FASTAPI_AI_CHAT_OPENAI_API_KEY": "second", "ANTHROPIC_API_KEY": "  "}
    )
    assert settings.openai_api_key == "first"
    assert settings.anthropic_api_key is None
    assert Settings.from_env({"FASTAPI_AI_CHAT_GEMINI_API_KEY": "g"}).configured_providers() == ["gemini"]


def test_sqlite_path_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        Settings.from_env({"FASTAPI_AI_CHAT_SQLITE_PATH": "/data/h.sqlite3"}).resolved_sqlite_path()
        == "/data/h.sqlite3"
    )
    assert Settings.from_env({"FASTAPI_AI_CHAT_SQLITE_PATH": ""}).resolved_sqlite_path() == ""
    monkeypatch.delenv("FASTAPI_AI_CHAT_SQLITE_PATH", raising=False)
    assert Settings.from_env({}).resolved_sqlite_path() == "./chat_history.sqlite3"
    # Keyword arguments: None falls back to the environment, "" disables, as in the reference.
    monkeypatch.setenv("FASTAPI_AI_CHAT_SQLITE_PATH", "/from/env.sqlite3")
    assert Settings().resolved_sqlite_path() == "/from/env.sqlite3"
    assert Settings(sqlite_path="").resolved_sqlite_path() == ""


def test_own_settings_use_the_lean_chat_prefix() -> None:
    settings = Settings.from_env(
        {
            "LEAN_CHAT_CORS_ORIGINS": "http://a.example, http://b.example,",
            "LEAN_CHAT_HEARTBEAT_SECONDS": "2.5",
            "LEAN_CHAT_MAX_BODY_BYTES": "2048",
            "LEAN_CHAT_HTTP2": "yes",
            "LEAN_CHAT_DEFAULT_MODEL": " mock-house ",
        }
    )
    assert settings.cors_allow_origins == ["http://a.example", "http://b.example"]
    assert settings.heartbeat_seconds == 2.5
    assert settings.max_body_bytes == 2048
    assert settings.http2 is True
    assert settings.default_model == "mock-house"


def test_every_other_field_can_be_set_as_lean_chat_field_name() -> None:
    samples = {"int": "7", "float": "7.5", "str": "x", "list": "a,b"}
    default = Settings()
    checked = 0
    for f in fields(Settings):
        kind = str(f.type).split("[")[0].split(" ")[0]
        if f.name in _ENV_NAMES or kind not in (*samples, "bool"):
            continue
        raw = ("false" if getattr(default, f.name) else "true") if kind == "bool" else samples[kind]
        name = f"LEAN_CHAT_{f.name.upper()}"
        assert getattr(Settings.from_env({name: raw}), f.name) != getattr(default, f.name), name
        checked += 1
    assert checked >= 15


def test_unreadable_number_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        Settings.from_env({"LEAN_CHAT_HEARTBEAT_SECONDS": "often"})


def test_overrides_beat_the_environment() -> None:
    assert Settings.from_env({"OPENAI_API_KEY": "env"}, openai_api_key="kw").openai_api_key == "kw"


def test_dotenv_files_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=from-dotenv\nLEAN_CHAT_DEFAULT_MODEL=dotenv-model\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("LEAN_CHAT_DEFAULT_MODEL", raising=False)
    settings = Settings.from_env()
    assert settings.openai_api_key != "from-dotenv"
    assert settings.default_model != "dotenv-model"


def test_keys_stay_out_of_repr() -> None:
    assert "sk-secret-value" not in repr(Settings(openai_api_key="sk-secret-value"))
