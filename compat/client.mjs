// A chat client that reads lean_chat's stream the way ai-chat-kit's React hook (useAIChat) does:
// fetch POST, response.body reader, TextDecoder, a text buffer split into frames on a blank line,
// `event:` and `data:` lines, JSON.parse of the data. Comment frames (": ping") are skipped.
//
// As a module: `import { streamChat } from "./client.mjs"`.
// From the command line (Node 18+, no packages): `node compat/client.mjs URL 'JSON BODY'`
// prints one JSON object: {status, tokens, done, error, comments, reads, cutReads}.

import { pathToFileURL } from "node:url";

// BEGIN streamChat (lean_chat/static/index.html carries this block verbatim; a test holds them equal)
function parseFrame(frame) {
  let event = "message";
  const data = [];
  let comment = null;
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) comment = line.slice(1).trim();
    else if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length === 0) return { event: null, data: null, comment };
  return { event, data: JSON.parse(data.join("\n")), comment };
}

async function streamChat(url, body, handlers = {}) {
  const stats = { status: 0, tokens: [], done: null, error: null, comments: 0, reads: 0, cutReads: 0 };
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal: handlers.signal,
  });
  stats.status = response.status;
  if (!response.ok || !response.body) {
    stats.error = { message: `HTTP ${response.status}`, detail: await response.text() };
    if (handlers.onError) handlers.onError(stats.error);
    return stats;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const handle = (frame) => {
    const parsed = parseFrame(frame);
    if (parsed.event === null) {
      if (parsed.comment !== null) stats.comments += 1;
      return;
    }
    if (parsed.event === "token") {
      stats.tokens.push(parsed.data.token);
      if (handlers.onToken) handlers.onToken(parsed.data.token);
    } else if (parsed.event === "done") {
      stats.done = parsed.data;
      if (handlers.onDone) handlers.onDone(parsed.data);
    } else if (parsed.event === "error") {
      stats.error = parsed.data.error;
      if (handlers.onError) handlers.onError(parsed.data.error);
    }
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
// END streamChat

export { parseFrame, streamChat };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, body] = process.argv.slice(2);
  if (!url || !body) {
    console.error("usage: node client.mjs URL 'JSON BODY'");
    process.exit(2);
  }
  streamChat(url, JSON.parse(body)).then(
    (stats) => console.log(JSON.stringify(stats)),
    (error) => {
      console.error(String(error));
      process.exit(1);
    },
  );
}
