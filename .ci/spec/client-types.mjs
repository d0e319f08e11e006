// Compile the server's TypeScript declarations with `tsc --strict`, used through socket.io-client's
// generics: `Socket<ServerToClientEvents, ClientToServerEvents>`.
// Usage: node client-types.mjs TYPES.d.ts (works in build/client-types beside this script, so that
// socket.io-client resolves from node_modules)
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node client-types.mjs TYPES.d.ts");
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const workDir = path.join(here, "build", "client-types");
await rm(workDir, { recursive: true, force: true });
await mkdir(workDir, { recursive: true });
// As a .ts file, so that `--skipLibCheck` (which skips the libraries' .d.ts files) still checks it.
await copyFile(file, path.join(workDir, "parley.ts"));
await writeFile(
  path.join(workDir, "usage.ts"),
  `import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "./parley";

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("http://127.0.0.1:8000", {
  auth: { token: "token" },
  transports: ["websocket"],
});
socket.emit("room:join", { room: "broadcast:all" }, (ack) => {
  const room: string = ack.ok ? ack.data.room : ack.error.code;
  return room;
});
socket.on("force_logout", (payload) => payload.reason);
`,
);
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
try {
  execFileSync(
    process.execPath,
    [
      tsc, "--strict", "--skipLibCheck", "--noEmit", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
      path.join(workDir, "usage.ts"),
    ],
    { stdio: "inherit", cwd: here },
  );
} catch {
  console.error(`tsc --strict rejects the client types`);
  process.exit(1);
}
console.log(`${file}: compiles with tsc --strict against socket.io-client's generics`);
