// Points the vendored suite at the server under test without editing it: test-suite.js declares
// `const URL = "http://localhost:3000";`, and this module-loader hook (given to Node with
// `--import`) replaces that one line with the URL in SOCKETIO_SUITE_URL as Node loads the file.
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const DECLARED = 'const URL = "http://localhost:3000";';

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!url.endsWith("/test-suite.js")) {
    return loaded;
  }
  const target = process.env.SOCKETIO_SUITE_URL;
  const source = String(loaded.source);
  if (!target || !source.includes(DECLARED)) {
    throw new Error(`suite-url: needs SOCKETIO_SUITE_URL and a test-suite.js declaring ${DECLARED}`);
  }
  return { ...loaded, source: source.replace(DECLARED, `const URL = ${JSON.stringify(target)};`) };
}

if (isMainThread) {
  register(import.meta.url);
}
