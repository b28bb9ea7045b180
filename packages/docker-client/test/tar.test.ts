import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProtocolError, ValidationError } from "@berth/runtime-core";
import { paxRecord as pax } from "@berth/runtime-core/internal";
import { afterAll, describe, expect, it } from "vitest";
import { packTar, unpackTar } from "../src/tar.js";

async function bytes(gen: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

async function drain(entries: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entries) {
    // read
  }
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

  it("writes long names outside ASCII that GNU tar reads, and reads them back (PAX lengths count bytes)", async () => {
    // The PAX record length once counted UTF-16 units: GNU tar refused such an archive ("Malformed extended
    // header"), and the reader, slicing decoded text by that length, read back a name from another archive.
    const name = `dir/${"é".repeat(60)}/file.txt`;
    const link = `${"ü".repeat(60)}/target`;
    const archive = await bytes(
      packTar([
        { name, data: "é" },
        { name: "l", type: "symlink", linkTarget: link },
      ]),
    );
    const file = join(dir, "utf8.tar");
    writeFileSync(file, archive);
    expect(execFileSync("tar", ["-tvf", file], { encoding: "utf8" })).toContain(`l -> ${link}`);
    expect(execFileSync("tar", ["-tf", file], { encoding: "utf8" }).trim().split("\n")).toEqual([name, "l"]);
    const got: string[] = [];
    for await (const e of unpackTar(once(archive))) got.push(`${e.name}:${e.linkTarget}:${e.size}`);
    expect(got).toEqual([`${name}::2`, `l:${link}:0`]);
    const src = join(dir, "utf8src");
    mkdirSync(src);
    writeFileSync(join(src, "ö".repeat(70)), "x");
    const gnu = execFileSync("tar", ["-cf", "-", "--format=posix", "-C", src, "ö".repeat(70)]);
    const names: string[] = [];
    for await (const e of unpackTar(once(gnu))) names.push(e.name);
    expect(names).toEqual(["ö".repeat(70)]);
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

  it("refuses an archive entry (name, PAX path, GNU long name, hard link target) holding a .. segment or a NUL", async () => {
    const cases: Uint8Array[][] = [
      [raw("../../etc/cron.d/x", "0", "x")],
      [raw("ok/../../x", "5")],
      [raw("PaxHeader", "x", pax("path", "a/../../../x")), raw("innocent", "0", "x")],
      [raw("././@LongLink", "L", "../outside\0"), raw("innocent", "0", "x")],
      [raw("hard", "1", "", "../../etc/shadow")],
      [raw("PaxHeader", "x", pax("path", "a\0b")), raw("innocent", "0", "x")],
    ];
    for (const [i, entries] of cases.entries()) {
      const archive = Buffer.concat([...entries, new Uint8Array(1024)]);
      const err = await drain(unpackTar(once(archive))).catch((e: unknown) => e);
      expect(err, `case ${i}`).toBeInstanceOf(ProtocolError);
    }
  });

  it("keeps absolute names as the engines write them (getArchive of /), and symlink targets as they are", async () => {
    const archive = Buffer.concat([
      raw("/", "5"),
      raw("/bin/sh", "2", "", "/bin/busybox"),
      new Uint8Array(1024),
    ]);
    const got: string[] = [];
    for await (const e of unpackTar(once(archive))) got.push(`${e.name}:${e.type}:${e.linkTarget}`);
    expect(got).toEqual(["/:directory:", "/bin/sh:symlink:/bin/busybox"]);
  });

  it("refuses a PAX or long-name header past 1 MiB, and a size field that is not a count", async () => {
    const big = raw("PaxHeader", "x", pax("comment", "c".repeat(2 << 20)));
    const err = await drain(unpackTar(once(Buffer.concat([big, raw("f", "0", "x")]), 65536))).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProtocolError);
    const bad = raw("f", "0", "");
    bad.set(new TextEncoder().encode("-0000000001\0"), 124);
    fixChecksum(bad);
    await expect(drain(unpackTar(once(Buffer.concat([bad, new Uint8Array(1024)]))))).rejects.toBeInstanceOf(
      ProtocolError,
    );
  });
});

/** A ustar header block (with any name) followed by its padded data, as a hostile archive would have it. */
function raw(name: string, typeflag: string, data: string | Uint8Array = "", link = ""): Uint8Array {
  const body = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const block = new Uint8Array(512);
  const put = (offset: number, text: string) => block.set(new TextEncoder().encode(text), offset);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, `${body.length.toString(8).padStart(11, "0")}\0`);
  put(136, "00000000000\0");
  put(156, typeflag);
  put(157, link);
  put(257, "ustar\0");
  put(263, "00");
  fixChecksum(block);
  const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
  padded.set(body);
  return Buffer.concat([block, padded]);
}

function fixChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i] as number;
  block.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
}
