// The parts of a container record the object layer reads and writes: its OCI spec (the daemon's data,
// which any client may have written, so checked), its runtime options, and files of its rootfs.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { isBerthError, ProtocolError } from "@berth/runtime-core";
import type { Mount } from "./generated/github.com/containerd/containerd/api/types/mount.js";
import { Options as RuncOptions } from "./generated/github.com/containerd/containerd/api/types/runc/options/oci.js";
import type { Any } from "./generated/google/protobuf/any.js";
import { readTextInRoot } from "./in-root.js";
import { type Fail, isObject, parseDocument } from "./oci/documents.js";
import type { Spec } from "./oci/spec.js";
import { MAX_USER_DB_BYTES } from "./oci/user.js";

/** The Any type URL of an OCI runtime spec in a container record. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/** The Any type URL of an OCI process spec (an exec's). */
export const PROCESS_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/** The Any type URL of the runc shim's options. */
export const RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";
/** The runc shim v2, the default runtime of new containers. */
export const RUNC_V2 = "io.containerd.runc.v2";

const run$ = promisify(execFile);

/** The daemon answered NotFound (the one test of it in this package). */
export function isNotFound(err: unknown): boolean {
  return isBerthError(err) && err.code === "NotFound";
}

/** Rethrows anything but a NotFound (for deleting what may be gone already). */
export function ignoreNotFound(err: unknown): undefined {
  if (!isNotFound(err)) throw err;
  return undefined;
}

/** The OCI runtime a container runs with. */
export interface RuntimeOptions {
  /** Shim name (default io.containerd.runc.v2). */
  name?: string;
  /** OCI runtime binary the shim runs, e.g. "/usr/bin/crun" (default: runc on PATH). */
  binaryName?: string;
  /** The runtime's state root (runc --root). */
  root?: string;
  /** Let systemd manage the container's cgroup (runc's --systemd-cgroup); default false. */
  systemdCgroup?: boolean;
}

/** An OCI spec as the Any a container record holds (JSON, SPEC_TYPE_URL). */
export function specAny(spec: Spec): Any {
  return { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) };
}

/** The runc shim's options as the Any a container record holds. */
export function runtimeAny(r: RuntimeOptions): Any {
  const opts = RuncOptions.fromPartial({
    binaryName: r.binaryName ?? "",
    root: r.root ?? "",
    systemdCgroup: r.systemdCgroup ?? false,
  });
  return { typeUrl: RUNC_OPTIONS_TYPE_URL, value: Buffer.from(RuncOptions.encode(opts).finish()) };
}

/** How files of an image's rootfs are read: paths resolved inside it, regular files only, capped. */
export const ROOTFS_READ = { maxBytes: MAX_USER_DB_BYTES, operation: "rootfs.read" };

/** Read files of a rootfs given by snapshot mounts: bind mounts are read in place, others are mounted
 *  read-only on a temporary directory for the time of the read. Missing files are undefined. Paths are
 *  resolved inside the rootfs (its symlinks cannot reach the host's files); a file that is not regular
 *  (FIFO, device, directory), larger than 1 MiB, or behind a symlink loop is a ValidationError. */
export async function readRootfsFiles(
  mounts: readonly Mount[],
  paths: readonly string[],
): Promise<(string | undefined)[]> {
  const readAll = (root: string) => Promise.all(paths.map((p) => readTextInRoot(root, p, ROOTFS_READ)));
  const m = mounts[0];
  if (!m) return paths.map(() => undefined);
  if (mounts.length === 1 && m.type === "bind") return readAll(m.source);
  const dir = await mkdtemp(join(tmpdir(), "berth-rootfs-"));
  try {
    for (const mount of mounts) {
      const options = [...mount.options.filter((o) => o !== "rw"), "ro"].join(",");
      await run$("mount", ["-t", mount.type, "-o", options, mount.source, dir]);
    }
    try {
      return await readAll(dir);
    } finally {
      for (const _ of mounts) await run$("umount", [dir]).catch(() => {});
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The OCI spec of a container record (an empty spec when it has none). The record is the daemon's (any
 *  client may have written it): a spec that is not a JSON object with a process object is a
 *  ProtocolError, not a SyntaxError or TypeError later. */
export function parseSpec(any: Any | undefined): Spec {
  if (!any?.value?.byteLength) return {} as Spec;
  const fail = (message: string) =>
    new ProtocolError(`container spec: ${message}`, { operation: "Containers.Get", backend: "containerd" });
  return parseDocument(any.value, "the container's OCI spec", checkSpec, fail);
}

function checkSpec(value: unknown, what: string, fail: Fail): Spec {
  if (!isObject(value)) throw fail(`${what} is not a JSON object`);
  const p = value.process;
  if (p !== undefined && !isObject(p)) throw fail(`${what}: process is not an object`);
  for (const key of ["args", "env"]) {
    const list = p?.[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((a) => typeof a !== "string"))) {
      throw fail(`${what}: process.${key} is not a list of strings`);
    }
  }
  return value as unknown as Spec;
}
