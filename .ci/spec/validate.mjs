// Validate an AsyncAPI document with the official parser: any error or warning fails. Information
// and hints are printed (the parser suggests AsyncAPI 3 to every 2.x document, an `info` diagnostic).
// Usage: node validate.mjs SPEC.json
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node validate.mjs SPEC.json");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"));
for (const d of diagnostics) {
  const where = d.path && d.path.length ? d.path.join("/") : "(document)";
  console.log(`${SEVERITY[d.severity] ?? d.severity} ${d.code} at ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
const warnings = diagnostics.filter((d) => d.severity === 1);
if (!document || errors.length > 0) {
  console.error(`${file}: ${errors.length} error(s); the document is not valid AsyncAPI`);
  process.exit(1);
}
if (warnings.length > 0) {
  console.error(`${file}: ${warnings.length} warning(s) from the official parser`);
  process.exit(1);
}
console.log(
  `${file}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.allMessages().length} messages, 0 errors, 0 warnings, ` +
    `${diagnostics.length} information diagnostics`,
);
