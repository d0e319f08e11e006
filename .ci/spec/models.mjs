// Generate TypeScript models from an AsyncAPI document with modelina, then compile them with
// `tsc --strict` (`--skipLibCheck` skips only the standard library's .d.ts files, not the models).
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
console.log(`${file}: ${models.length} modelina models compile with tsc --strict`);
