// ssh2 is an optional peer dependency: without it, an ssh:// host fails on first use with a typed error
// that names the package to install. A missing package is simulated with the error Node raises for it.
import { UnsupportedError } from "@berth/runtime-core";
import { Client } from "ssh2";
import { describe, expect, it } from "vitest";
import { loadSsh2 } from "../src/ssh2-module.js";

const notFound = () =>
  Promise.reject(
    Object.assign(
      new Error("Cannot find package 'ssh2' imported from /app/node_modules/x/dist/ssh2-module.js"),
      {
        code: "ERR_MODULE_NOT_FOUND",
      },
    ),
  );

describe("loadSsh2", () => {
  it("loads the installed ssh2", async () => {
    expect((await loadSsh2()).Client).toBe(Client);
  });

  it("finds Client on the namespace or on its default export", async () => {
    expect((await loadSsh2(async () => ({ default: { Client } }))).Client).toBe(Client);
  });

  it("says to install ssh2 when it is missing", async () => {
    const err = await loadSsh2(notFound).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err).toMatchObject({ operation: "ssh.connect", backend: "docker" });
    expect((err as Error).message).toMatch(/optional package ssh2.*npm install ssh2/);
  });

  it("names ssh2 when it is there but does not load", async () => {
    const broken = () => Promise.reject(new Error("cpu-features: invalid ELF header"));
    const err = await loadSsh2(broken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/ssh2, which did not load: cpu-features: invalid ELF header/);
    expect(await loadSsh2(async () => ({})).catch((e: unknown) => e)).toBeInstanceOf(UnsupportedError);
  });
});
