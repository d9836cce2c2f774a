// The stream client of lean_chat's demo page (lean_chat/http/static/client.mjs), run from the command line:
// `node compat/client.mjs URL 'JSON BODY'` (Node 18+, no packages) prints one JSON object:
// {status, tokens, done, error, comments, reads, cutReads}.
//
// As a module: `import { streamChat } from "./client.mjs"`.

import { pathToFileURL } from "node:url";

import { parseFrame, streamChat } from "../lean_chat/http/static/client.mjs";

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
