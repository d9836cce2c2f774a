"""The conformance kit: lean_chat and fastapi-ai-chat side by side, and a JavaScript client of the stream.

Not the FastAPI shim users import (`lean_chat.compat`, implemented in `lean_chat/fastapi_shim.py`).

`python -m compat` runs every scenario and prints a table; the test suite runs them too
(tests/compat/test_scenarios.py). See the README section "FastAPI and migrating from fastapi-ai-chat".
"""
