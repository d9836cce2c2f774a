"""Tests that drive the compatibility kit in compat/."""
