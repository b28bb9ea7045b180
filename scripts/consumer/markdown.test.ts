import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { codeBlocks, snippetFile, snippetSources } from "./markdown.mjs";

describe("codeBlocks", () => {
  it("finds fenced blocks with their language and first line", () => {
    const md = [
      "# t",
      "",
      "```ts",
      "const a = 1;",
      "```",
      "",
      "~~~ TypeScript title",
      "b",
      "~~~",
      "```",
      "plain",
      "```",
    ];
    expect(codeBlocks(md.join("\n"))).toEqual([
      { lang: "ts", code: "const a = 1;", line: 4, skip: undefined },
      { lang: "typescript", code: "b", line: 8, skip: undefined },
      { lang: "", code: "plain", line: 11, skip: undefined },
    ]);
  });

  it("closes a block only with a fence of the same character, at least as long", () => {
    const md = ["````ts", "```", "~~~", "x", "`````", "after"].join("\n");
    expect(codeBlocks(md)).toEqual([{ lang: "ts", code: "```\n~~~\nx", line: 2, skip: undefined }]);
  });

  it("strips the fence's indentation from the content, and ignores inline code and 4-space indents", () => {
    const md = ["  ```ts", "  a", "    b", "c", "  ```", "``` not`a fence", "    ```ts", "    x"].join("\n");
    expect(codeBlocks(md)).toEqual([{ lang: "ts", code: "a\n  b\nc", line: 2, skip: undefined }]);
  });

  it("reads the reason of a not-standalone marker on the line before", () => {
    const md = ["<!-- consumer-test: not standalone: needs a fixture -->", "```ts", "x", "```"].join("\n");
    expect(codeBlocks(md)[0]?.skip).toBe("needs a fixture");
  });

  it("runs an unclosed block to the end", () => {
    expect(codeBlocks("```ts\na\nb")).toEqual([{ lang: "ts", code: "a\nb", line: 2, skip: undefined }]);
  });
});

describe("snippetSources", () => {
  it("reads the root README, the package READMEs given, then docs/*.md sorted", () => {
    const repo = mkdtempSync(join(tmpdir(), "berth-markdown-"));
    try {
      expect(snippetSources(repo, ["packages/a/README.md"])).toEqual(["README.md", "packages/a/README.md"]);
      mkdirSync(join(repo, "docs", "sub.md"), { recursive: true });
      for (const f of ["docker.md", "README.md", "cri.md", "notes.txt"])
        writeFileSync(join(repo, "docs", f), "");
      expect(snippetSources(repo, [])).toEqual([
        "README.md",
        "docs/README.md",
        "docs/cri.md",
        "docs/docker.md",
      ]);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});

describe("snippetFile", () => {
  it("names each block's file after where it comes from", () => {
    expect(snippetFile("README.md", 0)).toBe("snippets/root-1.ts");
    expect(snippetFile("packages/crio-client/README.md", 2)).toBe("snippets/crio-client-3.ts");
    expect(snippetFile("docs/cri.md", 0)).toBe("snippets/docs-cri-1.ts");
    expect(snippetFile("docs/README.md", 1)).toBe("snippets/docs-README-2.ts");
  });
});
