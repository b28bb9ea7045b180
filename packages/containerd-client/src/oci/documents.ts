// Shape checks for the OCI image documents (index, manifest, descriptor, config) where they come in: from a
// registry, an archive or the content store. Well-formed JSON of the wrong shape (a manifest of `null`,
// `manifests: 5`, a platform without `os`, a negative size, a digest that is a path) is refused here with a
// typed error the caller chooses, so nothing downstream meets a value its type does not allow. Only what
// berth reads is checked; unknown fields pass.
import { type BerthError, isDigest } from "@berth/runtime-core";
import type { ociImageSpec } from "../generated/index.js";

/** Largest manifest or index read into memory by default: containerd's limit. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest image config read into memory by default. */
export const DEFAULT_MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Makes the caller's error: ProtocolError for a registry, ValidationError for an archive... */
export type Fail = (message: string) => BerthError;
/** One of the checks below. */
export type Check<T> = (value: unknown, what: string, fail: Fail) => T;

/** How one kind of document is read: the most bytes read of it, and the check of its shape. */
export interface DocumentKind<T> {
  readonly maxBytes: number;
  readonly check: Check<T>;
}

/** Parse a document and check its shape; bad JSON, like a wrong shape, is the caller's error. */
export function parseDocument<T>(bytes: Uint8Array, what: string, check: Check<T>, fail: Fail): T {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    throw fail(`${what} is not JSON`);
  }
  return check(json, what, fail);
}

type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const describe = (v: unknown) => (Array.isArray(v) ? "an array" : v === null ? "null" : `a ${typeof v}`);
/** A short rendering of a bad value for a message (it came from outside: never the whole of it). */
const show = (v: unknown) => {
  const s = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
};

function object(v: unknown, what: string, fail: Fail): Json {
  if (!isObject(v)) throw fail(`${what} is ${describe(v)}, not an object`);
  return v;
}

function optionalString(o: Json, key: string, what: string, fail: Fail): void {
  if (o[key] !== undefined && typeof o[key] !== "string") {
    throw fail(`${what}.${key} is ${describe(o[key])}, not a string`);
  }
}

function stringList(o: Json, key: string, what: string, fail: Fail, nullable = true): void {
  const v = o[key];
  if (v === undefined || (nullable && v === null)) return;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
    throw fail(`${what}.${key} is not a list of strings`);
  }
}

function stringMap(o: Json, key: string, what: string, fail: Fail, nullable = true): void {
  const v = o[key];
  if (v === undefined || (nullable && v === null)) return;
  if (!isObject(v) || Object.values(v).some((s) => typeof s !== "string")) {
    throw fail(`${what}.${key} is not a map of strings`);
  }
}

type IndexEntry = ociImageSpec.ImageIndex["manifests"][number];

/** A platform: os and architecture strings, an optional variant. */
export function checkPlatform(v: unknown, what: string, fail: Fail): IndexEntry["platform"] {
  const p = object(v, what, fail);
  for (const key of ["os", "architecture"]) {
    if (typeof p[key] !== "string") throw fail(`${what}.${key} is ${describe(p[key])}, not a string`);
  }
  optionalString(p, "variant", what, fail);
  return p as IndexEntry["platform"];
}

/** A content descriptor: a digest berth can verify, a size that is a whole number of bytes. */
export function checkDescriptor(v: unknown, what: string, fail: Fail): IndexEntry {
  const d = object(v, what, fail);
  optionalString(d, "mediaType", what, fail);
  if (typeof d.digest !== "string" || !isDigest(d.digest)) {
    throw fail(`${what}.digest ${show(d.digest)} is not a digest`);
  }
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) {
    throw fail(`${what}.size ${show(d.size)} is not a size in bytes`);
  }
  stringMap(d, "annotations", what, fail, false);
  stringList(d, "urls", what, fail, false);
  if (d.platform !== undefined) checkPlatform(d.platform, `${what}.platform`, fail);
  return d as unknown as IndexEntry;
}

function descriptorList(o: Json, key: string, what: string, fail: Fail): void {
  const list = o[key];
  if (!Array.isArray(list)) throw fail(`${what}.${key} is ${describe(list)}, not a list`);
  for (const [i, d] of list.entries()) checkDescriptor(d, `${what}.${key}[${i}]`, fail);
}

/** An image index (or Docker manifest list): a list of descriptors. */
export function checkIndex(v: unknown, what: string, fail: Fail): ociImageSpec.ImageIndex {
  const index = object(v, what, fail);
  optionalString(index, "mediaType", what, fail);
  descriptorList(index, "manifests", what, fail);
  stringMap(index, "annotations", what, fail, false);
  return index as unknown as ociImageSpec.ImageIndex;
}

/** An image manifest: a config descriptor and a list of layer descriptors. */
export function checkManifest(v: unknown, what: string, fail: Fail): ociImageSpec.ImageManifest {
  const manifest = object(v, what, fail);
  optionalString(manifest, "mediaType", what, fail);
  checkDescriptor(manifest.config, `${what}.config`, fail);
  descriptorList(manifest, "layers", what, fail);
  stringMap(manifest, "annotations", what, fail, false);
  return manifest as unknown as ociImageSpec.ImageManifest;
}

/** An image config: the fields berth reads (platform, rootfs diff IDs, the process settings). */
export function checkImageConfig(v: unknown, what: string, fail: Fail): ociImageSpec.ImageConfig {
  const config = object(v, what, fail);
  for (const key of ["os", "architecture", "variant"]) optionalString(config, key, what, fail);
  if (config.rootfs !== undefined) {
    const rootfs = object(config.rootfs, `${what}.rootfs`, fail);
    const ids = rootfs.diff_ids;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string" || !isDigest(id))) {
      throw fail(`${what}.rootfs.diff_ids is not a list of digests`);
    }
  }
  if (config.config !== undefined && config.config !== null) {
    const c = object(config.config, `${what}.config`, fail);
    for (const key of ["Env", "Entrypoint", "Cmd"]) stringList(c, key, `${what}.config`, fail);
    for (const key of ["User", "WorkingDir", "StopSignal"]) optionalString(c, key, `${what}.config`, fail);
    stringMap(c, "Labels", `${what}.config`, fail);
  }
  return config as unknown as ociImageSpec.ImageConfig;
}

/** An image index, read like a manifest. */
export const INDEX_DOCUMENT: DocumentKind<ociImageSpec.ImageIndex> = {
  maxBytes: DEFAULT_MAX_MANIFEST_BYTES,
  check: checkIndex,
};
/** An image manifest. */
export const MANIFEST_DOCUMENT: DocumentKind<ociImageSpec.ImageManifest> = {
  maxBytes: DEFAULT_MAX_MANIFEST_BYTES,
  check: checkManifest,
};
/** An image config. */
export const CONFIG_DOCUMENT: DocumentKind<ociImageSpec.ImageConfig> = {
  maxBytes: DEFAULT_MAX_CONFIG_BYTES,
  check: checkImageConfig,
};
