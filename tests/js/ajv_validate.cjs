// Compile every exported JSON Schema with ajv in its default strict mode, then validate documents against them.
// Usage: node ajv_validate.cjs SCHEMA_DIR [DOCS.jsonl]   (each line of DOCS: {"schema": "InferenceEvent", "doc": {...}})
// Prints one JSON line: {"compiled": [...], "valid": N, "invalid": [{"schema", "index", "errors"}]}; exits 1 on any
// compile error or invalid document. ajv-formats adds the standard formats (date-time…), as ajv's docs recommend.
"use strict";
const fs = require("fs");
const path = require("path");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const [schemaDir, docsFile] = process.argv.slice(2);
const ajv = new Ajv2020(); // default options: strict mode on
addFormats(ajv);
const validators = {};
for (const file of fs.readdirSync(schemaDir).filter((f) => f.endsWith(".schema.json")).sort()) {
  const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, file), "utf8"));
  validators[file.replace(/\.schema\.json$/, "")] = ajv.compile(schema); // throws on unknown keywords
}
let valid = 0;
const invalid = [];
if (docsFile) {
  const lines = fs.readFileSync(docsFile, "utf8").split("\n").filter((l) => l.trim());
  lines.forEach((line, index) => {
    const { schema, doc } = JSON.parse(line);
    const validate = validators[schema];
    if (!validate) throw new Error(`no schema named ${schema}`);
    if (validate(doc)) valid += 1;
    else invalid.push({ schema, index, errors: validate.errors });
  });
}
console.log(JSON.stringify({ compiled: Object.keys(validators), valid, invalid }));
process.exit(invalid.length ? 1 : 0);
