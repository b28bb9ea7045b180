// Paths named by a runtime's answers or a container record, used only inside a log root.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { logFileInside, makeDirectoryInside, pathInside } from "../src/internal.js";

const base = mkdtempSync(join(tmpdir(), "berth-log-root-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const root = join(base, "root");
const outside = join(base, "outside");
mkdirSync(outside);

describe("makeDirectoryInside", () => {
  it("makes the root and each missing directory below it", async () => {
    expect(await makeDirectoryInside(root, join(root, "ns", "id"))).toBe(true);
    expect(existsSync(join(root, "ns", "id"))).toBe(true);
    expect(await makeDirectoryInside(root, join(root, "ns", "id"))).toBe(true);
  });

  it("refuses a directory that is not below the root, making nothing", async () => {
    expect(await makeDirectoryInside(root, join(outside, "made"))).toBe(false);
    expect(await makeDirectoryInside(root, join(root, "..", "outside", "made"))).toBe(false);
    expect(existsSync(join(outside, "made"))).toBe(false);
  });

  it("never goes through a symlink or a file on the way", async () => {
    symlinkSync(outside, join(root, "link"));
    expect(await makeDirectoryInside(root, join(root, "link", "id"))).toBe(false);
    expect(existsSync(join(outside, "id"))).toBe(false);
    writeFileSync(join(root, "file"), "");
    expect(await makeDirectoryInside(root, join(root, "file", "id"))).toBe(false);
  });
});

describe("pathInside and logFileInside", () => {
  it("resolve the directories, not the last name", async () => {
    mkdirSync(join(root, "d"), { recursive: true });
    writeFileSync(join(root, "d", "x.log"), "");
    symlinkSync(join(outside, "victim"), join(root, "d", "link.log"));
    expect(await pathInside(root, join(root, "d", "x.log"))).toBeDefined();
    expect(await pathInside(root, join(root, "d", "link.log"))).toBeDefined();
    expect(await logFileInside(root, join(root, "d", "link.log"))).toBeUndefined();
    expect(await pathInside(root, join(root, "link", "x.log"))).toBeUndefined();
    expect(await pathInside(root, "relative/x.log")).toBeUndefined();
  });
});
