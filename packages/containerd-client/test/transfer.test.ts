// The streaming tar reader and writer used by image import/export, checked against GNU tar.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ValidationError } from "@berth/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTar, writeTar } from "../src/transfer/tar.js";

const exec = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-tar-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunked(buf: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.byteLength; i += size) yield buf.subarray(i, i + size);
}

const longName = `blobs/${"d".repeat(120)}/file`;

describe("tar", () => {
  it("writes what GNU tar reads, with streamed bodies and PAX long names", async () => {
    const big = Buffer.alloc(700_001, 7);
    const tar = await collect(
      writeTar([
        { name: "oci-layout", data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
        { name: "blobs", type: "directory" },
        { name: "blobs/big", size: big.byteLength, data: () => chunked(big, 65_536) },
        { name: longName, data: Buffer.from("long") },
        { name: "empty", data: new Uint8Array(0) },
      ]),
    );
    const file = join(dir, "w.tar");
    await writeFile(file, tar);
    const { stdout } = await exec("tar", ["tf", file]);
    expect(stdout.trim().split("\n")).toEqual(["oci-layout", "blobs/", "blobs/big", longName, "empty"]);
    const out = join(dir, "x");
    await exec("mkdir", ["-p", out]);
    await exec("tar", ["xf", file, "-C", out]);
    expect((await readFile(join(out, "blobs/big"))).equals(big)).toBe(true);
    expect(await readFile(join(out, longName), "utf8")).toBe("long");
  });

  it("reads PAX names outside ASCII by their byte lengths, its own and GNU tar's", async () => {
    // The PAX reader once sliced decoded text by a byte length: such a name came back with a "\n" and more.
    const name = `blobs/${"é".repeat(60)}/file`;
    const ours = await collect(writeTar([{ name, data: Buffer.from("x") }]));
    const names: string[] = [];
    for await (const e of readTar(chunked(ours, 100))) names.push(e.name);
    const src = join(dir, "utf8");
    await exec("mkdir", ["-p", src]);
    await writeFile(join(src, "ö".repeat(70)), "x");
    const file = join(dir, "utf8.tar");
    await exec("tar", ["cf", file, "--format=posix", "-C", src, "ö".repeat(70)]);
    for await (const e of readTar(chunked(await readFile(file), 100))) names.push(e.name);
    expect(names).toEqual([name, "ö".repeat(70)]);
  });

  it("reads what GNU tar writes, in any chunking, skipping unread bodies", async () => {
    const src = join(dir, "src");
    await exec("mkdir", ["-p", join(src, "a"), join(src, "d".repeat(120))]);
    await writeFile(join(src, "a/one"), "1".repeat(1000));
    await writeFile(join(src, "d".repeat(120), "two"), "2");
    await exec("ln", ["-s", "../a/one", join(src, "d".repeat(120), "link")]);
    const file = join(dir, "r.tar");
    await exec("tar", ["cf", file, "-C", src, "--format=gnu", "."]);
    const bytes = await readFile(file);
    for (const size of [1, 511, 512, 4096, bytes.byteLength]) {
      const seen: string[] = [];
      for await (const e of readTar(chunked(bytes, size))) {
        if (e.name === "a/one") seen.push(`${e.name}=${(await collect(e.body)).toString().length}`);
        else if (e.type === "symlink") seen.push(`${e.name}->${e.linkName}`);
        else seen.push(`${e.type}:${e.name}`); // body left unread: skipped
      }
      expect(seen.sort()).toEqual(
        [
          "directory:",
          "directory:a",
          `directory:${"d".repeat(120)}`,
          "a/one=1000",
          `file:${"d".repeat(120)}/two`,
          `${"d".repeat(120)}/link->../a/one`,
        ].sort(),
      );
    }
  });

  it("refuses garbage and truncated archives with ValidationError", async () => {
    const garbage = Buffer.alloc(1024, 65);
    await expect(
      collect(
        (async function* () {
          for await (const e of readTar(chunked(garbage, 100))) yield* e.body;
        })(),
      ),
    ).rejects.toBeInstanceOf(ValidationError);
    const tar = await collect(writeTar([{ name: "f", data: Buffer.alloc(2000, 1) }]));
    const cut = tar.subarray(0, 1500);
    await expect(
      (async () => {
        for await (const e of readTar(chunked(cut, 300))) await collect(e.body);
      })(),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it("refuses a stream body whose length differs from its announced size", async () => {
    await expect(
      collect(writeTar([{ name: "f", size: 10, data: () => chunked(Buffer.alloc(9), 4) }])),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
