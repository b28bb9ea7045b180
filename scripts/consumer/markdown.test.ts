import { describe, expect, it } from "vitest";
import { codeBlocks } from "./markdown.mjs";

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
