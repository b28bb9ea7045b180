// ssh2 is an optional peer dependency (it brings native install scripts that only ssh:// users should pay
// for), loaded on the first ssh:// connection. Its types stay out of the public declarations.
import { UnsupportedError } from "@berth/runtime-core";

/** What berth uses of ssh2, typed where it is used (ssh.ts) so that no declaration here names ssh2's. */
export interface Ssh2Module {
  Client: new () => unknown;
}

function missing(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === "ERR_MODULE_NOT_FOUND" && /['"]ssh2['"]/.test(String(e.message));
}

/** The ssh2 module, or an UnsupportedError saying to install it. `importer` is for tests. */
export async function loadSsh2(
  importer: () => Promise<Partial<Ssh2Module> & { default?: Partial<Ssh2Module> }> = () => import("ssh2"),
): Promise<Ssh2Module> {
  const details = { operation: "ssh.connect", backend: "docker" };
  let mod: Partial<Ssh2Module> & { default?: Partial<Ssh2Module> };
  try {
    mod = await importer();
  } catch (err) {
    throw new UnsupportedError(
      missing(err)
        ? "ssh:// hosts need the optional package ssh2, which is not installed: npm install ssh2"
        : `ssh:// hosts need the package ssh2, which did not load: ${(err as Error)?.message ?? err}`,
      { ...details, cause: err },
    );
  }
  // ssh2 is CommonJS: its exports are named, or only on `default`, depending on how it was loaded.
  const Client = mod.Client ?? mod.default?.Client;
  if (typeof Client !== "function") {
    throw new UnsupportedError("ssh:// hosts need the package ssh2, and what loaded has no Client", details);
  }
  return { Client };
}
