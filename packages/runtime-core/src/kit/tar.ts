// The ustar pieces both tar writers share (docker-client's packTar, containerd-client's writeTar): an
// entry's header blocks (a PAX header entry for long names and large sizes, then the ustar header with its
// checksum) and block padding; and the PAX reader both tar readers share.
// PAX lengths are bytes, never string lengths: a name outside ASCII must not shift the records after it.

/** A tar archive is made of 512-byte blocks. */
export const TAR_BLOCK = 512;
/** Largest size the 11 octal digits of a ustar header hold; beyond it a PAX "size" record is needed. */
export const MAX_OCTAL_SIZE = 0o77777777777;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The fields of one ustar header block. */
export interface UstarHeader {
  /** Up to 100 bytes are written; a longer name needs a PAX "path" record before it. */
  name: string;
  /** Above {@link MAX_OCTAL_SIZE} it is written as 0: give the size in a PAX "size" record. */
  size: number;
  /** "0" file, "5" directory, "2" symlink, "x" PAX header, ... */
  typeflag: string;
  mode: number;
  /** Default 0. */
  uid?: number;
  /** Default 0. */
  gid?: number;
  /** Seconds since the epoch; default 0 (the same input then always gives the same bytes). */
  mtime?: number;
  /** A link's target; up to 100 bytes are written (a longer one needs a PAX "linkpath" record). */
  linkName?: string;
}

function writeField(block: Uint8Array, offset: number, width: number, value: string): void {
  block.set(encoder.encode(value).subarray(0, width), offset);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** One 512-byte ustar header block, its checksum filled in. */
export function ustarHeader(h: UstarHeader): Uint8Array {
  const block = new Uint8Array(TAR_BLOCK);
  writeField(block, 0, USTAR_NAME_BYTES, h.name);
  writeField(block, 100, 8, octal(h.mode, 8));
  writeField(block, 108, 8, octal(h.uid ?? 0, 8));
  writeField(block, 116, 8, octal(h.gid ?? 0, 8));
  writeField(block, 124, 12, octal(h.size > MAX_OCTAL_SIZE ? 0 : h.size, 12));
  writeField(block, 136, 12, octal(h.mtime ?? 0, 12));
  writeField(block, 148, 8, "        "); // the checksum counts its own field as spaces
  writeField(block, 156, 1, h.typeflag);
  writeField(block, 157, USTAR_NAME_BYTES, h.linkName ?? "");
  writeField(block, 257, 6, "ustar\0");
  writeField(block, 263, 2, "00");
  let sum = 0;
  for (const b of block) sum += b;
  writeField(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** One PAX record, "<len> <key>=<value>\n", where len counts the record's bytes, its own digits included. */
export function paxRecord(key: string, value: string): string {
  const body = encoder.encode(` ${key}=${value}\n`).byteLength;
  let len = body + 1;
  while (String(len).length + body !== len) len = String(len).length + body;
  return `${len} ${key}=${value}\n`;
}

/** The longest name or link target a ustar header holds, in bytes. */
const USTAR_NAME_BYTES = 100;

/**
 * The header blocks of one entry: its ustar header, after a PAX header entry when the ustar header cannot
 * hold it all. A name or link target past 100 bytes puts both in PAX "path" and "linkpath" records, a
 * size past {@link MAX_OCTAL_SIZE} in a "size" record. The PAX entry has mode `paxMode` and the entry's
 * owner and mtime.
 */
export function tarEntryHeader(h: UstarHeader, paxMode: number): Uint8Array[] {
  const link = h.linkName ?? "";
  let records = "";
  if (
    encoder.encode(h.name).byteLength > USTAR_NAME_BYTES ||
    encoder.encode(link).byteLength > USTAR_NAME_BYTES
  ) {
    records += paxRecord("path", h.name) + (link ? paxRecord("linkpath", link) : "");
  }
  if (h.size > MAX_OCTAL_SIZE) records += paxRecord("size", String(h.size));
  if (!records) return [ustarHeader(h)];
  const pax = encoder.encode(records);
  const owner = { uid: h.uid, gid: h.gid, mtime: h.mtime };
  return [
    ustarHeader({ name: "././@PaxHeader", size: pax.byteLength, typeflag: "x", mode: paxMode, ...owner }),
    pax,
    tarPadding(pax.byteLength),
    ustarHeader(h),
  ];
}

/** The zero bytes that fill an entry of `size` bytes up to a whole block. */
export function tarPadding(size: number): Uint8Array {
  const rest = size % TAR_BLOCK;
  return new Uint8Array(rest === 0 ? 0 : TAR_BLOCK - rest);
}

/** The records of a PAX header's data, read by their byte lengths. `complete` is false when a record's
 *  length is missing or not a positive number; `records` then holds those read before it. Records without
 *  a key are skipped. */
export function parsePax(data: Uint8Array): { records: Record<string, string>; complete: boolean } {
  const records: Record<string, string> = {};
  let pos = 0;
  while (pos < data.byteLength) {
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? Number.NaN : Number.parseInt(decoder.decode(data.subarray(pos, space)), 10);
    if (!Number.isFinite(len) || len <= 0) return { records, complete: false };
    const record = decoder.decode(data.subarray(space + 1, pos + len - 1));
    const eq = record.indexOf("=");
    if (eq > 0) records[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return { records, complete: true };
}
