// The X-Docker-Container-Path-Stat header of archive operations: base64 JSON describing the path.
import { ProtocolError } from "@berth/runtime-core";
import type { ResponseHeaders } from "./operation.js";

export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits: permission bits plus type bits (directory is 1 << 31). */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export const PATH_STAT_HEADER = "x-docker-container-path-stat";

/** Decode the path stat that getArchive and archiveInfo return in their headers. */
export function decodePathStat(headers: ResponseHeaders): PathStat | undefined {
  const raw = headers[PATH_STAT_HEADER];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value) return undefined;
  try {
    return JSON.parse(Buffer.from(value, "base64").toString("utf8")) as PathStat;
  } catch (cause) {
    throw new ProtocolError(`malformed ${PATH_STAT_HEADER} header`, { cause });
  }
}

/** Whether a PathStat mode is a directory (Go's os.ModeDir). */
export function isDirectoryMode(mode: number): boolean {
  return (mode & 0x80000000) !== 0;
}
