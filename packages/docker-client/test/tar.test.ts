import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "@berth/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { packTar, unpackTar } from "../src/tar.js";

async function bytes(gen: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

async function* once(b: Uint8Array, size = 700): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const dir = mkdtempSync(join(tmpdir(), "berth-tar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tar", () => {
  const longName = `deep/${"d".repeat(120)}/file.txt`;
  const entries = [
    { name: "dir/", type: "directory" as const },
    { name: "dir/hello.txt", data: "hello\n", mode: 0o600 },
    { name: longName, data: new Uint8Array([0, 1, 2, 255]) },
    { name: "link", type: "symlink" as const, linkTarget: "dir/hello.txt" },
  ];

  it("writes archives GNU tar reads, long names included", async () => {
    const archive = await bytes(packTar(entries));
    expect(archive.length % 512).toBe(0);
    const file = join(dir, "ours.tar");
    writeFileSync(file, archive);
    const listed = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).trim().split("\n");
    expect(listed).toEqual(["dir/", "dir/hello.txt", longName, "link"]);
    const out = join(dir, "x");
    mkdirSync(out);
    execFileSync("tar", ["-xf", file, "-C", out]);
    expect(readFileSync(join(out, "dir/hello.txt"), "utf8")).toBe("hello\n");
    expect([...readFileSync(join(out, longName))]).toEqual([0, 1, 2, 255]);
  });

  it("reads archives GNU tar writes", async () => {
    const src = join(dir, "src");
    mkdirSync(join(src, "a"), { recursive: true });
    writeFileSync(join(src, "a/one.txt"), "one");
    writeFileSync(join(src, `${"n".repeat(150)}.bin`), Buffer.alloc(1500, 7));
    const archive = execFileSync("tar", ["-cf", "-", "--format=gnu", "-C", src, "."]);
    const got: Record<string, string> = {};
    for await (const e of unpackTar(once(archive))) got[e.name] = `${e.type}:${e.size}`;
    expect(got).toMatchObject({
      "./a/": "directory:0",
      "./a/one.txt": "file:3",
      [`./${"n".repeat(150)}.bin`]: "file:1500",
    });
  });

  it("round-trips through its own reader", async () => {
    const names: string[] = [];
    for await (const e of unpackTar(packTar(entries))) names.push(`${e.name}:${e.type}:${e.size}`);
    expect(names).toEqual([
      "dir/:directory:0",
      "dir/hello.txt:file:6",
      `${longName}:file:4`,
      "link:symlink:0",
    ]);
  });

  it("refuses names that escape the archive root", async () => {
    await expect(bytes(packTar([{ name: "../etc/passwd", data: "x" }]))).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(bytes(packTar([{ name: "/abs", data: "x" }]))).rejects.toBeInstanceOf(ValidationError);
  });

  it("reports a truncated archive", async () => {
    const archive = await bytes(packTar([{ name: "f", data: "x".repeat(2000) }]));
    await expect(bytes(unpackTar(once(archive.subarray(0, 1024))) as never)).rejects.toThrow(/ended inside/);
  });
});
