"""Label values: our own words, or a bounded set of model names."""

from __future__ import annotations

from lean_chat.metrics.labels import OTHER, ModelLabels, code_label, error_type_label, provider_label


def test_model_names_become_labels_only_when_served_and_while_room_is_left() -> None:
    models = ModelLabels(3, ["gpt-4.1"])
    assert models.label("gpt-4.1") == "gpt-4.1"
    assert models.label("gpt-4o") == OTHER
    models.learn("gpt-4o")
    models.learn("bad name\n")
    models.learn("claude-3-5-sonnet")
    models.learn("gemini-2.0-flash")  # no room left
    assert models.label("gpt-4o") == "gpt-4o"
    assert models.label("bad name\n") == OTHER
    assert models.label("claude-3-5-sonnet") == "claude-3-5-sonnet"
    assert models.label("gemini-2.0-flash") == OTHER
    assert models.label("mock-anything\n{}") == "mock"
    assert models.known == {"gpt-4.1", "gpt-4o", "claude-3-5-sonnet"}


def test_codes_providers_and_error_types_are_our_words() -> None:
    assert code_label("provider_error") == "provider_error"
    assert code_label(None) == ""
    assert code_label('x"} 1\n') == OTHER
    assert provider_label("openai") == "openai"
    assert provider_label("azure") == OTHER
    assert error_type_label("429") == "429"
    assert error_type_label("ReadTimeout") == "ReadTimeout"
    assert error_type_label("model not found") == OTHER
    assert error_type_label(None) == OTHER
