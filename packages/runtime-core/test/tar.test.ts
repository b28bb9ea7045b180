// The ustar header writer and PAX records both tar writers use, checked field by field and against GNU tar.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  MAX_OCTAL_SIZE,
  parsePax,
  paxRecord,
  TAR_BLOCK,
  tarEntryHeader,
  tarPadding,
  ustarHeader,
} from "../src/internal.js";

const encoder = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), "berth-kit-tar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function field(block: Uint8Array, offset: number, width: number): string {
  const slice = block.subarray(offset, offset + width);
  const end = slice.indexOf(0);
  return new TextDecoder().decode(end === -1 ? slice : slice.subarray(0, end));
}

const octalField = (block: Uint8Array, offset: number, width: number) =>
  Number.parseInt(field(block, offset, width).trim(), 8);

/** What a reader computes: every byte, the checksum field counted as eight spaces. */
function checksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum;
}

/** Entries as header, data and padding, then the two zero blocks that end an archive. */
function archive(parts: Array<{ header: Uint8Array; data?: Uint8Array }>): Buffer {
  const out: Uint8Array[] = [];
  for (const { header, data } of parts) {
    out.push(header);
    if (data) out.push(data, tarPadding(data.byteLength));
  }
  out.push(new Uint8Array(TAR_BLOCK * 2));
  return Buffer.concat(out);
}

function gnuList(tar: Buffer, ...args: string[]): string[] {
  const file = join(dir, "t.tar");
  writeFileSync(file, tar);
  return execFileSync("tar", ["-t", ...args, "-f", file], { encoding: "utf8" })
    .trim()
    .split("\n");
}

describe("ustarHeader", () => {
  it("writes each field where ustar puts it, with a checksum a reader accepts", () => {
    const block = ustarHeader({
      name: "dir/link",
      size: 0,
      typeflag: "2",
      mode: 0o755,
      uid: 1000,
      gid: 100,
      mtime: 1_700_000_000,
      linkName: "../target",
    });
    expect(block.byteLength).toBe(TAR_BLOCK);
    expect(field(block, 0, 100)).toBe("dir/link");
    expect(field(block, 100, 8)).toBe("0000755");
    expect(octalField(block, 108, 8)).toBe(1000);
    expect(octalField(block, 116, 8)).toBe(100);
    expect(field(block, 124, 12)).toBe("00000000000");
    expect(octalField(block, 136, 12)).toBe(1_700_000_000);
    expect(field(block, 156, 1)).toBe("2");
    expect(field(block, 157, 100)).toBe("../target");
    expect(field(block, 257, 6)).toBe("ustar");
    expect(field(block, 263, 2)).toBe("00");
    // Six octal digits, a NUL and a space, as GNU tar writes it.
    expect(field(block, 148, 8)).toMatch(/^[0-7]{6}$/);
    expect(block[154]).toBe(0);
    expect(block[155]).toBe(0x20);
    expect(octalField(block, 148, 8)).toBe(checksum(block));
  });

  it("defaults owner and mtime to 0, so the same input gives the same bytes", () => {
    const a = ustarHeader({ name: "f", size: 5, typeflag: "0", mode: 0o644 });
    expect(octalField(a, 108, 8)).toBe(0);
    expect(octalField(a, 116, 8)).toBe(0);
    expect(field(a, 136, 12)).toBe("00000000000");
    expect(field(a, 157, 100)).toBe("");
    expect(Buffer.from(a).equals(ustarHeader({ name: "f", size: 5, typeflag: "0", mode: 0o644 }))).toBe(true);
  });

  it("writes a size past 11 octal digits as 0 (the caller gives it in a PAX size record)", () => {
    expect(
      octalField(ustarHeader({ name: "f", size: MAX_OCTAL_SIZE, typeflag: "0", mode: 0 }), 124, 12),
    ).toBe(MAX_OCTAL_SIZE);
    const big = ustarHeader({ name: "f", size: MAX_OCTAL_SIZE + 1, typeflag: "0", mode: 0 });
    expect(field(big, 124, 12)).toBe("00000000000");
    expect(octalField(big, 148, 8)).toBe(checksum(big));
  });

  it("keeps the first 100 bytes of a longer name", () => {
    const block = ustarHeader({ name: "n".repeat(150), size: 0, typeflag: "0", mode: 0o644 });
    expect(field(block, 0, 100)).toBe("n".repeat(100));
    expect(block[100]).toBe(0x30); // the mode field starts right after, untouched
  });

  it("makes archives GNU tar lists with their modes, owners, sizes and times", () => {
    const data = encoder.encode("hello\n");
    const tar = archive([
      { header: ustarHeader({ name: "d/", size: 0, typeflag: "5", mode: 0o755, mtime: 86_400 }) },
      {
        header: ustarHeader({
          name: "d/f",
          size: data.byteLength,
          typeflag: "0",
          mode: 0o600,
          uid: 7,
          gid: 8,
        }),
        data,
      },
      { header: ustarHeader({ name: "d/l", size: 0, typeflag: "2", mode: 0o777, linkName: "f" }) },
    ]);
    const listed = gnuList(tar, "-v", "--numeric-owner", "--utc");
    expect(listed[0]).toMatch(/^drwxr-xr-x 0\/0 +0 1970-01-02 00:00 d\/$/);
    expect(listed[1]).toMatch(/^-rw------- 7\/8 +6 1970-01-01 00:00 d\/f$/);
    expect(listed[2]).toMatch(/^lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 d\/l -> f$/);
  });
});

describe("paxRecord", () => {
  it("counts the whole record, its own digits included", () => {
    expect(paxRecord("path", "a")).toBe("9 path=a\n");
    // 8 bytes after the digits: one digit would make 9, which is still one digit.
    expect(paxRecord("k", "abcd")).toBe("9 k=abcd\n");
    // 9 bytes after the digits: one digit would make 10, two digits make 11.
    expect(paxRecord("k", "abcde")).toBe("11 k=abcde\n");
    // 98 bytes after the digits: two digits would make 100, three make 101.
    const r = paxRecord("k", "v".repeat(94));
    expect(r.startsWith("101 ")).toBe(true);
    expect(encoder.encode(r).byteLength).toBe(101);
  });

  it("counts bytes, not string length, for names outside ASCII", () => {
    const name = `dir/${"é".repeat(60)}/file.txt`; // 73 characters, 133 bytes
    const record = paxRecord("path", name);
    const bytes = encoder.encode(record).byteLength;
    expect(record).toBe(`${bytes} path=${name}\n`);
    expect(bytes).toBe(3 + 1 + "path=".length + 133 + 1);
    expect(record.length).not.toBe(bytes);
  });

  it("gives GNU tar long names outside ASCII", () => {
    const names = [`dir/${"é".repeat(60)}/file.txt`, `${"日本語".repeat(20)}/x`, `${"a".repeat(99)}ü`];
    const tar = archive(
      names.flatMap((name) => {
        const records = encoder.encode(paxRecord("path", name));
        return [
          {
            header: ustarHeader({
              name: "././@PaxHeader",
              size: records.byteLength,
              typeflag: "x",
              mode: 0o644,
            }),
            data: records,
          },
          { header: ustarHeader({ name, size: 0, typeflag: "0", mode: 0o644 }), data: new Uint8Array(0) },
        ];
      }),
    );
    expect(gnuList(tar)).toEqual(names);
  });
});

describe("parsePax", () => {
  it("reads records by their byte lengths, values outside ASCII and with '=' or newlines included", () => {
    const name = `dir/${"é".repeat(60)}/file.txt`;
    const data = encoder.encode(
      paxRecord("path", name) + paxRecord("linkpath", "ü=1\nx") + paxRecord("size", "8589934592"),
    );
    expect(parsePax(data)).toEqual({
      records: { path: name, linkpath: "ü=1\nx", size: "8589934592" },
      complete: true,
    });
  });

  it("reads what GNU tar writes for a name outside ASCII", () => {
    const src = join(dir, "src");
    const name = `${"ö".repeat(70)}.txt`;
    execFileSync("mkdir", ["-p", src]);
    writeFileSync(join(src, name), "x");
    const tar = execFileSync("tar", ["-c", "--format=posix", "-f", "-", "-C", src, name]);
    const size = octalField(tar, 124, 12);
    expect(field(tar, 156, 1)).toBe("x");
    expect(parsePax(tar.subarray(TAR_BLOCK, TAR_BLOCK + size)).records.path).toBe(name);
  });

  it("stops at a record without a length, keeping those before it", () => {
    const good = paxRecord("path", "a");
    for (const bad of ["x path=b\n", "0 path=b\n", "-5 path=b\n", "12"]) {
      expect(parsePax(encoder.encode(good + bad)), bad).toEqual({ records: { path: "a" }, complete: false });
    }
    expect(parsePax(new Uint8Array(0))).toEqual({ records: {}, complete: true });
  });

  it("skips a record without a key", () => {
    expect(parsePax(encoder.encode(paxRecord("", "v") + paxRecord("path", "a")))).toEqual({
      records: { path: "a" },
      complete: true,
    });
  });
});

describe("tarEntryHeader", () => {
  const decoder = new TextDecoder();

  it("is the ustar header alone when that holds the whole entry", () => {
    const h = {
      name: "n".repeat(100),
      size: MAX_OCTAL_SIZE,
      typeflag: "2",
      mode: 0o777,
      linkName: "l".repeat(100),
    };
    const blocks = tarEntryHeader(h, 0o644);
    expect(blocks).toHaveLength(1);
    expect(Buffer.from(blocks[0] as Uint8Array).equals(ustarHeader(h))).toBe(true);
  });

  it("puts a long name, and the link target with it, in a PAX entry with the entry's owner", () => {
    const h = {
      name: `${"é".repeat(50)}x`,
      size: 0,
      typeflag: "2",
      mode: 0o777,
      uid: 7,
      gid: 8,
      mtime: 9,
      linkName: "t",
    };
    const [pax, data, pad, header, ...rest] = tarEntryHeader(h, 0o600) as Uint8Array[];
    expect(rest).toEqual([]);
    expect(field(pax as Uint8Array, 0, 100)).toBe("././@PaxHeader");
    expect(field(pax as Uint8Array, 156, 1)).toBe("x");
    expect(field(pax as Uint8Array, 100, 8)).toBe("0000600");
    expect([108, 116].map((o) => octalField(pax as Uint8Array, o, 8))).toEqual([7, 8]);
    expect(octalField(pax as Uint8Array, 136, 12)).toBe(9);
    expect(octalField(pax as Uint8Array, 124, 12)).toBe((data as Uint8Array).byteLength);
    expect(decoder.decode(data)).toBe(paxRecord("path", h.name) + paxRecord("linkpath", "t"));
    expect((pad as Uint8Array).byteLength).toBe(tarPadding((data as Uint8Array).byteLength).byteLength);
    expect(Buffer.from(header as Uint8Array).equals(ustarHeader(h))).toBe(true);
    const longLink = tarEntryHeader(
      { name: "l", size: 0, typeflag: "2", mode: 0o777, linkName: "t".repeat(101) },
      0o644,
    );
    expect(decoder.decode(longLink[1])).toBe(paxRecord("path", "l") + paxRecord("linkpath", "t".repeat(101)));
  });

  it("gives a size past 11 octal digits in a PAX record, after the names", () => {
    const size = MAX_OCTAL_SIZE + 1;
    const name = "n".repeat(101);
    expect(decoder.decode(tarEntryHeader({ name: "f", size, typeflag: "0", mode: 0o644 }, 0o644)[1])).toBe(
      paxRecord("size", String(size)),
    );
    expect(decoder.decode(tarEntryHeader({ name, size, typeflag: "0", mode: 0o644 }, 0o644)[1])).toBe(
      paxRecord("path", name) + paxRecord("size", String(size)),
    );
  });

  it("makes entries GNU tar lists with their long names", () => {
    const names = [`dir/${"é".repeat(60)}/file.txt`, `${"a".repeat(99)}ü`];
    const tar = Buffer.concat([
      ...names.flatMap((name) => tarEntryHeader({ name, size: 0, typeflag: "0", mode: 0o644 }, 0o644)),
      ...tarEntryHeader({ name: "l", size: 0, typeflag: "2", mode: 0o777, linkName: "t".repeat(150) }, 0o644),
      new Uint8Array(TAR_BLOCK * 2),
    ]);
    expect(gnuList(tar, "-v")).toEqual([
      expect.stringMatching(/ dir\/é+\/file\.txt$/),
      expect.stringMatching(/ a+ü$/),
      expect.stringMatching(/ l -> t{150}$/),
    ]);
  });
});

describe("tarPadding", () => {
  it("fills up to a whole block", () => {
    expect(tarPadding(0).byteLength).toBe(0);
    expect(tarPadding(1).byteLength).toBe(511);
    expect(tarPadding(512).byteLength).toBe(0);
    expect(tarPadding(513).byteLength).toBe(511);
    expect(tarPadding(1000).every((b) => b === 0)).toBe(true);
  });
});
