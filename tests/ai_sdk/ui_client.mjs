// The AI SDK's own client against a live lean_chat: DefaultChatTransport + readUIMessageStream, as useChat uses
// them. Usage: node ui_client.mjs BASE_URL STEPS_JSON; prints one JSON result per step (a JSON array).
//
// Each step: {op: "send", user, chatId, messages, trigger?, messageId?, body?, abortAfter?}
//            {op: "reconnect", user, chatId}
//            {op: "messages", user, chatId}
//            {op: "bytes", text}: a stream's bytes made by the test, read as a response body would be
// Every chunk that reaches the transport is also parsed on its own with the package's schema
// (parseJsonEventStream + uiMessageChunkSchema): `rejected` lists each chunk the schema refused.
import {
  DefaultChatTransport,
  parseJsonEventStream,
  readUIMessageStream,
  uiMessageChunkSchema,
  validateUIMessages,
} from "ai";

const [base, stepsJson] = process.argv.slice(2);
const steps = JSON.parse(stepsJson);

// Checks every chunk of a response body against the package's schema; resolves to the refused ones.
async function schemaCheck(body) {
  const rejected = [];
  const reader = parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!value.success) rejected.push(String(value.error?.message ?? value.error));
    }
  } catch (error) {
    if (error?.name !== "AbortError") rejected.push(`stream: ${error}`);
  }
  return rejected;
}

function transportFor(user, checks, seen) {
  return new DefaultChatTransport({
    api: `${base}/chat/ui`,
    headers: { Authorization: `Bearer ${user}` },
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      seen.status = response.status;
      seen.headers = Object.fromEntries(response.headers.entries());
      if (response.ok && response.body) checks.push(schemaCheck(response.clone().body));
      else if (!response.ok) seen.errorBody = await response.clone().text();
      return response;
    },
  });
}

// Reads a chunk stream through readUIMessageStream; the chunks seen, the last message, and any error.
async function consume(stream, result, abort, abortAfter) {
  const chunks = [];
  const counted = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(chunk);
        controller.enqueue(chunk);
        if (abortAfter !== undefined && chunks.filter((c) => c.type === "text-delta").length >= abortAfter) {
          abort.abort();
        }
      },
    }),
  );
  try {
    for await (const message of readUIMessageStream({ stream: counted, terminateOnError: true })) {
      result.message = message;
    }
  } catch (error) {
    result.error = String(error?.message ?? error);
  }
  result.chunks = chunks;
}

async function run(step) {
  const checks = [];
  const result = { op: step.op };
  const transport = transportFor(step.user, checks, result);
  const abort = new AbortController();
  try {
    if (step.op === "send") {
      const stream = await transport.sendMessages({
        chatId: step.chatId,
        messages: step.messages,
        trigger: step.trigger ?? "submit-message",
        messageId: step.messageId,
        body: step.body ?? {},
        abortSignal: abort.signal,
      });
      await consume(stream, result, abort, step.abortAfter);
    } else if (step.op === "reconnect") {
      const stream = await transport.reconnectToStream({ chatId: step.chatId, abortSignal: abort.signal });
      result.noContent = stream === null;
      if (stream !== null) await consume(stream, result, abort, step.abortAfter);
    } else if (step.op === "bytes") {
      const body = () => new Response(step.text).body;
      checks.push(schemaCheck(body()));
      const stream = transport.processResponseStream(body());
      await consume(stream, result, abort, undefined);
    } else if (step.op === "messages") {
      const response = await fetch(`${base}/chat/ui/${encodeURIComponent(step.chatId)}/messages`, {
        headers: { Authorization: `Bearer ${step.user}` },
      });
      result.status = response.status;
      result.messages = await response.json();
      try {
        await validateUIMessages({ messages: result.messages });
        result.valid = true;
      } catch (error) {
        result.valid = false;
        result.error = String(error?.message ?? error);
      }
    }
  } catch (error) {
    result.error = String(error?.message ?? error);
  }
  result.rejected = (await Promise.all(checks)).flat();
  return result;
}

const results = [];
for (const step of steps) {
  results.push(await run(step));
}
process.stdout.write(JSON.stringify(results));
