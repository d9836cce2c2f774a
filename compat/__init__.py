"""The compatibility kit: lean_chat and fastapi-ai-chat side by side, and a JavaScript client of the stream.

`python -m compat` runs every scenario and prints a table; the test suite runs them too
(tests/compat/test_scenarios.py). See the README section "FastAPI and migrating from fastapi-ai-chat".
"""
