// The X-Docker-Container-Path-Stat header comes from the daemon: any shape other than the documented one
// is a ProtocolError at the boundary, never a value whose fields throw later.
import { ProtocolError } from "@berth/runtime-core";
import { describe, expect, it } from "vitest";
import { decodePathStat, PATH_STAT_HEADER } from "../src/index.js";

const header = (value: unknown) => ({
  [PATH_STAT_HEADER]: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString(
    "base64",
  ),
});

describe("decodePathStat", () => {
  it("reads Docker's and Podman's stat", () => {
    const docker = { name: "passwd", size: 71, mode: 420, mtime: "2026-12-05T09:03:51Z", linkTarget: "" };
    expect(decodePathStat(header(docker))).toEqual(docker);
    const podman = { ...docker, isDir: false, linkTarget: "/etc/passwd" };
    expect(decodePathStat(header(podman))).toEqual({ ...docker, linkTarget: "/etc/passwd" });
    expect(decodePathStat({})).toBeUndefined();
  });

  it("is a ProtocolError for JSON of another shape", () => {
    const good = { name: "f", size: 1, mode: 420, mtime: "", linkTarget: "" };
    for (const bad of [
      "null",
      "[]",
      "5",
      '"text"',
      "not json",
      { ...good, name: 5 },
      { ...good, size: "1" },
      { ...good, size: -1 },
      { ...good, mode: 1.5 },
      { ...good, mode: 2 ** 33 },
      { ...good, mtime: null },
      { ...good, linkTarget: {} },
    ]) {
      expect(() => decodePathStat(header(bad)), JSON.stringify(bad)).toThrow(ProtocolError);
    }
  });
});
