// lean_chat's stream client. It reads the stream the way ai-chat-kit's React hook (useAIChat) does:
// fetch POST, response.body reader, TextDecoder, a text buffer split into frames on a blank line,
// `event:` and `data:` lines, JSON.parse of the data. Comment lines (the heartbeat ": ping") are counted and
// skipped, alone or before a frame's fields.
//
// The demo page imports it from the server (`static/client.mjs`, next to the page); compat/client.mjs
// imports this same file to run it under Node. Plain JavaScript: browsers and Node 18+, no packages.
//
// Resumable streams (`params.resume`): `handlers.onStart(streamId)` gets the `x-stream-id` header, `handlers.onId(id)`
// each frame's `id:`, and `resumeChat(url, handlers)` follows `GET /chat/stream/{streamId}?userId=` (204: nothing left).
//
// Tools and reasoning (`params.events`): every other event (`reasoning`, `tool_call`, `tool_result`, `step`) goes to
// `handlers.onEvent(name, data)`.

function parseFrame(frame) {
  let event = "message";
  const data = [];
  let comment = null;
  let comments = 0;
  let id = null;
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) {
      comment = line.slice(1).trim();
      comments += 1;
    }
    else if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (data.length === 0) return { event: null, data: null, comment, comments, id };
  return { event, data: JSON.parse(data.join("\n")), comment, comments, id };
}

function newStats() {
  return { status: 0, tokens: [], done: null, error: null, comments: 0, reads: 0, cutReads: 0 };
}

async function streamChat(url, body, handlers = {}) {
  const stats = newStats();
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal: handlers.signal,
  });
  return readStream(response, handlers, stats);
}

async function resumeChat(url, handlers = {}) {
  const response = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: handlers.signal });
  if (response.status === 204) return { ...newStats(), status: 204 };
  return readStream(response, handlers, newStats());
}

async function readStream(response, handlers, stats) {
  stats.status = response.status;
  if (!response.ok || !response.body) {
    stats.error = { message: `HTTP ${response.status}`, detail: await response.text() };
    if (handlers.onError) handlers.onError(stats.error);
    return stats;
  }
  const streamId = response.headers.get("x-stream-id");
  if (streamId && handlers.onStart) handlers.onStart(streamId);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const handle = (frame) => {
    const parsed = parseFrame(frame);
    stats.comments += parsed.comments;
    if (parsed.event === null) return;
    if (parsed.event === "token") {
      stats.tokens.push(parsed.data.token);
      if (handlers.onToken) handlers.onToken(parsed.data.token);
    } else if (parsed.event === "done") {
      stats.done = parsed.data;
      if (handlers.onDone) handlers.onDone(parsed.data);
    } else if (parsed.event === "error") {
      stats.error = parsed.data.error;
      if (handlers.onError) handlers.onError(parsed.data.error);
    } else if (handlers.onEvent) {
      handlers.onEvent(parsed.event, parsed.data);
    }
    if (parsed.id !== null && handlers.onId) handlers.onId(parsed.id);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stats.reads += 1;
    buffer += decoder.decode(value, { stream: true });
    let boundary = buffer.indexOf("\n\n");
    while (boundary !== -1) {
      handle(buffer.slice(0, boundary));
      buffer = buffer.slice(boundary + 2);
      boundary = buffer.indexOf("\n\n");
    }
    if (buffer.length > 0) stats.cutReads += 1;
  }
  buffer += decoder.decode();
  if (buffer.trim().length > 0) handle(buffer);
  return stats;
}

export { parseFrame, resumeChat, streamChat };
