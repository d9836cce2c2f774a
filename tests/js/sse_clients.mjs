// Reads one lean_chat stream with a real third-party SSE client, as an app would, and prints what the app saw.
//
//   node sse_clients.mjs <eventsource-parser|fetch-event-source> <url> <json body>
//
// The app JSON.parses every message it is handed (the usual way). It prints one JSON object: the tokens, the
// `done` or `error` payload, how many messages reached it, how many had empty data, the parse failures, and the
// errors the library reported (fetch-event-source POSTs the chat again after one, unless told to stop).
import { createParser } from "eventsource-parser";
import { fetchEventSource } from "@microsoft/fetch-event-source";

const [client, url, body] = process.argv.slice(2);
const seen = { client, status: 0, tokens: [], done: null, error: null, messages: 0, empty: 0, parseFailures: [], libraryErrors: [] };

function handle(event, data) {
  // What an app does with each message: parse the JSON, then act on the event name.
  seen.messages += 1;
  if (data === "") seen.empty += 1;
  let payload;
  try {
    payload = JSON.parse(data);
  } catch (err) {
    seen.parseFailures.push(String(err));
    throw err;
  }
  if (event === "token") seen.tokens.push(payload.token);
  else if (event === "done") seen.done = payload;
  else if (event === "error") seen.error = payload.error;
}

async function withParser() {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body,
  });
  seen.status = response.status;
  const parser = createParser({
    onEvent(message) {
      try {
        handle(message.event, message.data);
      } catch {
        // counted in parseFailures
      }
    },
    onError(err) {
      seen.libraryErrors.push(String(err));
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body) parser.feed(decoder.decode(chunk, { stream: true }));
  parser.feed(decoder.decode());
}

async function withFetchEventSource() {
  // The library is written for browsers: it calls window.setTimeout / window.fetch and document's listeners.
  globalThis.window = globalThis;
  globalThis.document = { hidden: false, addEventListener() {}, removeEventListener() {} };
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 60000);
  try {
    await fetchEventSource(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body,
      signal: stop.signal,
      openWhenHidden: true,
      async onopen(response) {
        seen.status = response.status;
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
      },
      onmessage(message) {
        handle(message.event, message.data); // a throw here makes the library POST the chat again
      },
      onerror(err) {
        seen.libraryErrors.push(String(err));
        if (seen.libraryErrors.length >= 3) throw err; // stop retrying: the test reports what happened
        return 100;
      },
    });
  } catch {
    // reported in libraryErrors
  } finally {
    clearTimeout(timer);
  }
}

if (client === "eventsource-parser") await withParser();
else if (client === "fetch-event-source") await withFetchEventSource();
else throw new Error(`unknown client ${client}`);
process.stdout.write(JSON.stringify(seen));
