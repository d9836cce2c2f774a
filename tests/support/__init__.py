"""What the tests share, one concept per module (conftest.py files only turn these into fixtures).

- `apps`: a lean_chat app in-process (`in_process`, `asgi_client`), stream bodies, raw ASGI scopes.
- `frames`: reading lean_chat's SSE wire (`parse_frames`, `check_grammar`).
- `raw_asgi`: an ASGI call with any bytes, chunked bodies and a deadline.
- `live_server`: `free_port`, `LiveServer` (uvicorn in a thread), `fake_upstreams`.
- `server_process`: `lean-chat serve` as a real subprocess (`ServerProcess`, `serving`, `environment`).
- `upstreams`: fake OpenAI, Anthropic and Gemini servers speaking their real streaming formats.
- `providers`: lean_chat in front of one fake upstream (`lean`, `ask`, `chat_body`, `MODELS`).
- `browser`: Debian's Chromium through Playwright (`chromium_page`), the demo page's conversation as stored.
- `postgres`: a database of its own on the test PostgreSQL; `stores`: the kinds of store under test.
- `services`: the markers of tests needing PostgreSQL, Redis, Chromium or Node, and the check that they carry them.
"""
