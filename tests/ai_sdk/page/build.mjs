// Builds page/chat.jsx with the pinned packages into one script: node page/build.mjs OUT_FILE.
import { build } from "esbuild";

await build({
  entryPoints: [new URL("./chat.jsx", import.meta.url).pathname],
  bundle: true,
  format: "esm",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  minify: true,
  outfile: process.argv[2],
  logLevel: "error",
});
process.stdout.write(JSON.stringify({ built: process.argv[2] }));
