"""The package version (pyproject.toml says the same; tests/test_public_api.py holds them equal)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
