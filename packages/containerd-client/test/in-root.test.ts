// Reading files of an image's rootfs: the image chooses every path component, so a symlink (absolute,
// or a `../` chain), a loop, a FIFO, a device or a huge file must never reach the host's files, hang, or
// allocate without bound. Real temporary directories stand in for a mounted rootfs.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { NotFoundError, ValidationError } from "@berth/runtime-core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openInRoot, readFileInRoot, readRootfsFiles, readTextInRoot, resolveInRoot } from "../src/index.js";

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let root: string;
/** A file outside the rootfs, standing for /etc/shadow. */
let hostDir: string;
let hostFile: string;
const HOST_SECRET = "root:$6$host-secret-hash:19000:0:99999:7:::\n";

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-rootfs-"));
  hostDir = await mkdtemp(join(tmpdir(), "berth-host-"));
  hostFile = join(hostDir, "shadow");
  await writeFile(hostFile, HOST_SECRET);
  await mkdir(join(root, "etc"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(hostDir, { recursive: true, force: true });
});

const bind = () => [{ type: "bind", source: root, target: "", options: ["rbind", "ro"] }];
const readPasswd = () => readRootfsFiles(bind(), ["etc/passwd", "etc/group"]);

describe("readRootfsFiles: hostile image paths", () => {
  it("reads plain files, and a missing one is undefined", async () => {
    await writeFile(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    expect(await readPasswd()).toEqual(["root:x:0:0:root:/root:/bin/sh\n", undefined]);
  });

  it("an absolute symlink to a host file is re-rooted inside the image", async () => {
    await symlink(hostFile, join(root, "etc/passwd"));
    // Not there inside the root: missing, never the host's file.
    expect(await readPasswd()).toEqual([undefined, undefined]);
    await mkdir(join(root, hostDir), { recursive: true });
    await writeFile(join(root, hostFile), "inside:x:1:1::/:/bin/sh\n");
    expect(await readPasswd()).toEqual(["inside:x:1:1::/:/bin/sh\n", undefined]);
  });

  it("a relative ../ escape is clamped at the root", async () => {
    const up = "../".repeat(20);
    await symlink(`${up}${hostFile.slice(1)}`, join(root, "etc/passwd"));
    await symlink(`../..${hostDir}`, join(root, "etc/hostdir"));
    await symlink("hostdir/shadow", join(root, "etc/group"));
    expect(await readPasswd()).toEqual([undefined, undefined]);
  });

  it("a directory component that is an absolute symlink is re-rooted", async () => {
    await rm(join(root, "etc"), { recursive: true });
    await symlink(hostDir, join(root, "etc"));
    await writeFile(join(hostDir, "passwd"), HOST_SECRET);
    expect(await readPasswd()).toEqual([undefined, undefined]);
  });

  it("a symlink loop is a ValidationError", async () => {
    await symlink("b", join(root, "etc/passwd"));
    await symlink("passwd", join(root, "etc/b"));
    await expect(readPasswd()).rejects.toBeInstanceOf(ValidationError);
  });

  it("a FIFO is refused at once (no hang waiting for a writer)", async () => {
    await exec("mkfifo", [join(root, "etc/fifo")]);
    await symlink("/etc/fifo", join(root, "etc/passwd"));
    const err = await readPasswd().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/not a regular file/);
  });

  it("a link to /dev/zero stays inside the root", async () => {
    await symlink("/dev/zero", join(root, "etc/passwd"));
    expect(await readPasswd()).toEqual([undefined, undefined]);
  });

  it.runIf(isRoot)("a device node in the image is refused", async () => {
    await mkdir(join(root, "dev"));
    await exec("mknod", [join(root, "dev/zero"), "c", "1", "5"]);
    await symlink("/dev/zero", join(root, "etc/passwd"));
    await expect(readPasswd()).rejects.toBeInstanceOf(ValidationError);
  });

  it("a huge file is refused without reading it", async () => {
    await writeFile(join(root, "etc/passwd"), "");
    await truncate(join(root, "etc/passwd"), 8 * 1024 ** 3);
    const err = await readPasswd().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as Error).message).toMatch(/larger than/);
  });
});

describe("in-root: the resolver", () => {
  it("resolves re-rooted symlinks and clamps .. in the asked path", async () => {
    await mkdir(join(root, "usr/lib"), { recursive: true });
    await writeFile(join(root, "usr/lib/os-release"), "ID=test\n");
    await symlink("../usr/lib/os-release", join(root, "etc/os-release"));
    await symlink("/usr", join(root, "etc/usr"));
    expect(await resolveInRoot(root, "etc/os-release")).toBe(join(root, "usr/lib/os-release"));
    expect(await resolveInRoot(root, "../../../etc/usr/lib")).toBe(join(root, "usr/lib"));
    expect(await resolveInRoot(root, "/")).toBe(root);
    const text = await readFileInRoot(root, "/../etc/usr/../etc/os-release", { maxBytes: 100 });
    expect(text.toString()).toBe("ID=test\n");
  });

  it("a missing component, or a file used as a directory, is a NotFoundError", async () => {
    await writeFile(join(root, "etc/passwd"), "x");
    await expect(openInRoot(root, "etc/nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(openInRoot(root, "etc/passwd/x")).rejects.toBeInstanceOf(NotFoundError);
    await expect(openInRoot(join(root, "nowhere"), "etc/passwd")).rejects.toBeInstanceOf(NotFoundError);
    expect(await readTextInRoot(root, "etc/nope", { maxBytes: 1 })).toBeUndefined();
  });

  it("a directory is not a file; a root given as a symlink is followed (as /proc/<pid>/root)", async () => {
    await expect(openInRoot(root, "etc")).rejects.toBeInstanceOf(ValidationError);
    await expect(openInRoot(root, "etc/..")).rejects.toBeInstanceOf(ValidationError);
    await writeFile(join(root, "etc/passwd"), "via link");
    const link = join(hostDir, "root-link");
    await symlink(root, link);
    expect(await readTextInRoot(link, "etc/passwd", { maxBytes: 100 })).toBe("via link");
  });

  it("counts symlink hops: a chain longer than the limit is refused", async () => {
    await writeFile(join(root, "etc/end"), "end");
    let previous = "end";
    for (let i = 0; i < 10; i++) {
      await symlink(previous, join(root, `etc/l${i}`));
      previous = `l${i}`;
    }
    expect(await readTextInRoot(root, "etc/l9", { maxBytes: 10 })).toBe("end");
    await expect(readFileInRoot(root, "etc/l9", { maxBytes: 10, maxHops: 9 })).rejects.toThrow(
      /more than 9 symlinks/,
    );
    // A self-loop through a directory component.
    await symlink(".", join(root, "etc/self"));
    await symlink("self/self/loop", join(root, "etc/loop"));
    await expect(openInRoot(root, "etc/loop")).rejects.toBeInstanceOf(ValidationError);
  });

  it("caps the bytes read: a file of exactly the cap is read, one byte more is refused", async () => {
    await writeFile(join(root, "etc/passwd"), Buffer.alloc(1000, 0x61));
    expect((await readFileInRoot(root, "etc/passwd", { maxBytes: 1000 })).byteLength).toBe(1000);
    await expect(readFileInRoot(root, "etc/passwd", { maxBytes: 999 })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("errors name the operation", async () => {
    await exec("mkfifo", [join(root, "etc/fifo")]);
    const err = (await openInRoot(root, "etc/fifo", { operation: "copyFrom" }).catch(
      (e) => e,
    )) as ValidationError;
    expect(err.operation).toBe("copyFrom");
    expect(err.message).toMatch(/a FIFO/);
  });
});
