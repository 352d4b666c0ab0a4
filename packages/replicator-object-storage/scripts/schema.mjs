// Writes the replication event's JSON Schema, generated from its description in @omnirelay/core's wire layer, to the
// copy this package ships (schema/) and to the one docs/ publishes. Run after a field is added to a message:
//   pnpm --filter @omnirelay/replicator-object-storage schema
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { replicationEventJsonSchema } from "@omnirelay/core/wire";

const text = `${JSON.stringify(replicationEventJsonSchema(), null, 2)}\n`;
const here = import.meta.dirname;
for (const path of [
  join(here, "..", "schema", "replication-event.v1.json"),
  join(here, "..", "..", "..", "docs", "schema", "replication-event.v1.json"),
]) {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}
