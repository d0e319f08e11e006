// Generate TypeScript models from an AsyncAPI document with modelina, check that every message's
// payload (each event and each ack) got a model of its own name and that no model is anonymous, then
// compile them with `tsc --strict` (`--skipLibCheck` skips only the standard library's .d.ts files).
// Usage: node models.mjs SPEC.json OUTPUT_DIR
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { TypeScriptFileGenerator } from "@asyncapi/modelina";

const [file, outputDir] = process.argv.slice(2);
if (!file || !outputDir) {
  console.error("usage: node models.mjs SPEC.json OUTPUT_DIR");
  process.exit(2);
}
await rm(outputDir, { recursive: true, force: true });
await mkdir(outputDir, { recursive: true });
const spec = JSON.parse(await readFile(file, "utf8"));
const generator = new TypeScriptFileGenerator({ modelType: "interface" });
const models = await generator.generateToFiles(spec, outputDir, { exportType: "named" });
if (models.length === 0) {
  console.error(`${file}: modelina generated no model`);
  process.exit(1);
}
const names = new Set(models.map((model) => model.modelName));
const payloadName = (message) => (message.payload.$ref ?? "").replace("#/components/schemas/", "");
// A message without a payload is an event that takes none: there is nothing to model.
const missing = Object.entries(spec.components.messages)
  .filter(([, message]) => message.payload !== undefined)
  .filter(([, message]) => !names.has(payloadName(message)))
  .map(([key, message]) => `${key} (${payloadName(message) || "inline payload"})`);
const anonymous = [...names].filter((name) => /^Anonymous/i.test(name));
if (missing.length > 0 || anonymous.length > 0) {
  console.error(`${file}: no model for ${missing.join(", ") || "-"}; anonymous models: ${anonymous.join(", ") || "-"}`);
  process.exit(1);
}
const acks = Object.values(spec.components.messages)
  .filter((message) => message.name.endsWith("/ack"))
  .map(payloadName);
console.log(`ack models (${acks.length}): ${acks.join(", ")}`);
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const sources = models.map((model) => path.join(outputDir, `${model.modelName}.ts`));
try {
  execFileSync(
    process.execPath,
    [tsc, "--strict", "--skipLibCheck", "--noEmit", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", ...sources],
    { stdio: "inherit" },
  );
} catch {
  console.error(`tsc --strict rejects the modelina models`);
  process.exit(1);
}
console.log(
  `${file}: ${models.length} modelina models, one for each of the ${Object.keys(spec.components.messages).length} ` +
    `messages' payloads, compile with tsc --strict`,
);
