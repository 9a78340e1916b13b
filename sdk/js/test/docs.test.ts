// The JavaScript examples of docs/sdk-js.md, run verbatim against a real gateway: every
// `js` block marked as run by this file, with the gateway's URL for http://127.0.0.1:8000
// and `import ... from "relaycast"` bound to this package.
import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import * as relaycast from "../src/index.js";
import { URL_, needsGateway } from "./gateway.js";

const DOC = new URL("../../../docs/sdk-js.md", import.meta.url);
const MARK = "sdk/js/test/docs.test.ts runs it verbatim";

function examples(): { line: number; code: string }[] {
  const lines = readFileSync(DOC, "utf8").split("\n");
  const found: { line: number; code: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```js") continue;
    const before = lines.slice(Math.max(0, i - 2), i).filter((l) => l.trim());
    const end = lines.indexOf("```", i + 1);
    if (before.at(-1)?.includes(MARK)) found.push({ line: i + 1, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return found;
}

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;

/** Run one example as a module body: its imports of "relaycast" become parameters. */
async function run(code: string): Promise<void> {
  const names: string[] = [];
  const body = code
    .replace(/^import \{([^}]*)\} from "relaycast";$/gm, (_, list: string) => {
      names.push(...list.split(",").map((n) => n.trim()).filter(Boolean));
      return "";
    })
    .replaceAll("http://127.0.0.1:8000", URL_);
  expect(body).not.toMatch(/^import /m);
  const values = names.map((n) => (relaycast as Record<string, unknown>)[n]);
  await new AsyncFunction(...names, body)(...values);
}

describe.skipIf(needsGateway)("docs/sdk-js.md", () => {
  const found = examples();
  it("has examples to run", () => expect(found.length).toBeGreaterThanOrEqual(3));
  for (const { line, code } of found) {
    it(`the example at line ${line} runs`, async () => {
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      try {
        await run(code);
        expect(log).toHaveBeenCalled(); // every example reports what it saw
      } finally {
        log.mockRestore();
      }
    });
  }
});
