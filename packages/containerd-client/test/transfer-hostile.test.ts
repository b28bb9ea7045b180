// Importing from a directory the caller does not control: symlinks (loops, escapes to host files),
// FIFOs, devices and absurd nesting come out as archive entries, never followed or opened on the host, so
// the importer sees a directory exactly as it sees a tar archive. Real temporary directories.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ValidationError } from "@berth/runtime-core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { archiveEntries } from "../src/transfer/source.js";

const exec = promisify(execFile);
let root: string;
let hostDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-layout-"));
  hostDir = await mkdtemp(join(tmpdir(), "berth-host-"));
  await mkdir(join(root, "blobs/sha256"), { recursive: true });
  await writeFile(join(root, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(hostDir, { recursive: true, force: true });
});

/** Every entry: name, type, link target, and the body's text for files. */
async function list(dir: string) {
  const out: { name: string; type: string; linkName?: string; text?: string }[] = [];
  for await (const e of archiveEntries(dir, new AbortController().signal)) {
    if (e.type === "file") {
      const parts: Uint8Array[] = [];
      for await (const c of e.body) parts.push(c);
      out.push({ name: e.name, type: e.type, text: Buffer.concat(parts).toString() });
    } else if (e.type === "symlink") out.push({ name: e.name, type: e.type, linkName: e.linkName });
    else out.push({ name: e.name, type: e.type });
  }
  return out;
}

describe("import from a directory: hostile layouts", () => {
  it("a symlink loop is an entry, not an ELOOP", async () => {
    await symlink("b", join(root, "blobs/sha256/a"));
    await symlink("a", join(root, "blobs/sha256/b"));
    const entries = await list(root);
    expect(entries).toContainEqual({ name: "blobs/sha256/a", type: "symlink", linkName: "b" });
    expect(entries).toContainEqual({ name: "blobs/sha256/b", type: "symlink", linkName: "a" });
  });

  it("a directory that links to itself is not walked again", async () => {
    await symlink(".", join(root, "blobs/self"));
    await symlink("..", join(root, "blobs/sha256/up"));
    const entries = await list(root);
    expect(entries.map((e) => e.name).sort()).toEqual(["blobs/self", "blobs/sha256/up", "oci-layout"]);
  });

  it("a link to a host file is never read", async () => {
    const secret = join(hostDir, "shadow");
    await writeFile(secret, "host secret");
    await symlink(secret, join(root, "index.json"));
    await symlink(hostDir, join(root, "blobs/host"));
    const entries = await list(root);
    expect(JSON.stringify(entries)).not.toContain("host secret");
    expect(entries).toContainEqual({ name: "index.json", type: "symlink", linkName: secret });
    expect(entries).toContainEqual({ name: "blobs/host", type: "symlink", linkName: hostDir });
  });

  it("FIFOs and devices are listed as other entries and never opened", async () => {
    await exec("mkfifo", [join(root, "blobs/sha256/fifo")]);
    if (process.getuid?.() === 0) await exec("mknod", [join(root, "blobs/zero"), "c", "1", "5"]);
    const entries = await list(root);
    expect(entries).toContainEqual({ name: "blobs/sha256/fifo", type: "other" });
    expect(entries.filter((e) => e.type === "file").map((e) => e.name)).toEqual(["oci-layout"]);
  });

  it("nesting deeper than any layout needs is a ValidationError", async () => {
    const deep = join(root, ...Array.from({ length: 40 }, () => "d"));
    await mkdir(deep, { recursive: true });
    await expect(list(root)).rejects.toBeInstanceOf(ValidationError);
  });

  it("a source that is a FIFO is refused, not waited on", async () => {
    const fifo = join(hostDir, "fifo");
    await exec("mkfifo", [fifo]);
    await expect(list(fifo)).rejects.toBeInstanceOf(ValidationError);
  });
});
