// Componentizes a transform: node build.mjs ENTRY WIT_DIR OUT. The component imports nothing
// but the world's `log`: every WASI feature the engine could pull in is left out.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [sourcePath, witPath, out] = process.argv.slice(2);
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName: "transform",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
