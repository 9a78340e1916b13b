// Copy the built client into gateway/static/sdk/, where every gateway serves it: the
// browser modules and their types. The React bindings (a bare `react` import) and the
// package entry point stay in the package.
import { copyFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "dist");
const target = join(here, "..", "..", "..", "gateway", "static", "sdk");
for (const name of readdirSync(dist)) {
  if (/^(react|index)\./.test(name) || !/\.(js|d\.ts)$/.test(name)) continue;
  copyFileSync(join(dist, name), join(target, name));
}
