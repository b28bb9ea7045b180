// The X-Docker-Container-Path-Stat header of archive operations: base64 JSON describing the path.
import { ProtocolError } from "@berth/runtime-core";
import type { ResponseHeaders } from "./operation.js";

/** What the daemon says of a path in a container (archive operations' X-Docker-Container-Path-Stat). */
export interface PathStat {
  /** The path's base name. */
  name: string;
  /** Its size in bytes. */
  size: number;
  /** Go's os.FileMode bits: permission bits plus type bits (directory is 1 << 31). */
  mode: number;
  /** Modification time, as the daemon formats it (RFC 3339). */
  mtime: string;
  /** A symlink's target (empty for anything else). */
  linkTarget: string;
}

/** The response header that carries a PathStat (lower case, as undici gives headers). */
export const PATH_STAT_HEADER = "x-docker-container-path-stat";

const isCount = (v: unknown, max: number): v is number =>
  Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;

/** Decode the path stat that getArchive and archiveInfo return in their headers. Anything but the
 *  documented shape is a ProtocolError (fields the daemon adds are left out). */
export function decodePathStat(headers: ResponseHeaders): PathStat | undefined {
  const raw = headers[PATH_STAT_HEADER];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, "base64").toString("utf8"));
  } catch (cause) {
    throw new ProtocolError(`malformed ${PATH_STAT_HEADER} header`, { cause });
  }
  const stat = (parsed ?? undefined) as Partial<Record<keyof PathStat, unknown>> | undefined;
  if (
    typeof stat !== "object" ||
    Array.isArray(stat) ||
    typeof stat.name !== "string" ||
    !isCount(stat.size, Number.MAX_SAFE_INTEGER) ||
    !isCount(stat.mode, 0xffffffff) ||
    typeof stat.mtime !== "string" ||
    typeof stat.linkTarget !== "string"
  ) {
    throw new ProtocolError(`${PATH_STAT_HEADER} header of an unexpected shape`);
  }
  return {
    name: stat.name,
    size: stat.size,
    mode: stat.mode,
    mtime: stat.mtime,
    linkTarget: stat.linkTarget,
  };
}

/** Whether a PathStat mode is a directory (Go's os.ModeDir). */
export function isDirectoryMode(mode: number): boolean {
  return (mode & 0x80000000) !== 0;
}
