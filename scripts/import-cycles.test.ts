import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { importCycles } from "./import-cycles.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

// Cycles known when this check came (issue 15), to be broken by their packages' owners. A new cycle fails
// the test; so does a listed one that is gone (take it off the list), so the list only shrinks.
// All are broken now: the list stays empty.
const KNOWN: string[] = [];

describe("import cycles", () => {
  it("none between the source files of any package (but the known ones)", () => {
    const cycles = importCycles(root).map((cycle) => cycle.join(" -> "));
    const added = cycles.filter((c) => !KNOWN.includes(c));
    expect(added, `new import cycles:\n${added.join("\n")}`).toEqual([]);
    const gone = KNOWN.filter((c) => !cycles.includes(c));
    expect(gone, `known import cycles no longer found (take them off KNOWN):\n${gone.join("\n")}`).toEqual(
      [],
    );
  });

  it("names a cycle, type-only imports and export-from included; a one-way graph has none", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-cycles-"));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(join(dir, path, ".."), { recursive: true });
        writeFileSync(join(dir, path), text);
      };
      write("packages/a/src/verb.ts", 'import { low } from "./wire/low.js";\nexport type Sink = {};\n');
      write("packages/a/src/wire/low.ts", 'import type { Sink } from "../verb.js";\nexport const low = 1;\n');
      write("packages/b/src/index.ts", 'export * from "./x.js";\n');
      write("packages/b/src/x.ts", 'import "node:fs";\nimport { y } from "@berth/b";\nexport const x = 1;\n');
      expect(importCycles(dir)).toEqual([
        ["packages/a/src/verb.ts", "packages/a/src/wire/low.ts", "packages/a/src/verb.ts"],
      ]);
      write("packages/a/src/wire/low.ts", "export const low = 1;\n");
      expect(importCycles(dir)).toEqual([]);
      write("packages/b/src/x.ts", 'export { x } from "./index.js";\nexport const x = 1;\n');
      expect(importCycles(dir)).toEqual([
        ["packages/b/src/index.ts", "packages/b/src/x.ts", "packages/b/src/index.ts"],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
