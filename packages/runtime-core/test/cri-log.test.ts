import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AbortedError, ProtocolError } from "../src/index.js";
import {
  CriLogDecoder,
  type CriLogEntry,
  formatCriLogRecords,
  parseCriLogRecord,
  readCriLogs,
} from "../src/internal.js";

const dir = mkdtempSync(join(tmpdir(), "berth-crilog-"));
const ts = (s: number) => `2026-01-02T03:04:${String(s).padStart(2, "0")}.123456789Z`;
const rec = (s: number, stream: string, tag: string, content: string) =>
  `${ts(s)} ${stream} ${tag} ${content}\n`;

/** Split a line into 16 KiB partials as containerd does. */
function split(s: number, stream: string, line: string, size = 16 * 1024): string {
  let out = "";
  for (let i = 0; i < line.length; i += size) {
    const last = i + size >= line.length;
    out += rec(s, stream, last ? "F" : "P", line.slice(i, i + size));
  }
  return out;
}

async function all(path: string, options = {}): Promise<CriLogEntry[]> {
  const out: CriLogEntry[] = [];
  for await (const e of readCriLogs(path, options)) out.push(e);
  return out;
}

describe("CRI log records", () => {
  it("parses time, stream, tag and content (which may contain spaces or be empty)", () => {
    const r = parseCriLogRecord(`${ts(5)} stderr F a  b `);
    expect(r.stream).toBe("stderr");
    expect(r.partial).toBe(false);
    expect(r.content.toString()).toBe("a  b ");
    expect(r.timestamp).toBe(ts(5));
    expect(r.time.toISOString()).toBe("2026-01-02T03:04:05.123Z");
    expect(parseCriLogRecord(`${ts(5)} stdout P `).content.length).toBe(0);
    expect(parseCriLogRecord(`${ts(5)} stdout P`).partial).toBe(true);
  });

  it("rejects lines that are not CRI records", () => {
    expect(() => parseCriLogRecord("hello world")).toThrow(ProtocolError);
    expect(() => parseCriLogRecord(`${ts(1)} stdin F x`)).toThrow(ProtocolError);
    expect(() => parseCriLogRecord(`yesterday stdout F x`)).toThrow(ProtocolError);
    expect(new CriLogDecoder({ lenient: true }).push(Buffer.from("junk\n"))).toEqual([]);
  });

  it("merges partials per stream, even interleaved, and keeps a UTF-8 character split across them", () => {
    const d = new CriLogDecoder();
    const text =
      rec(1, "stdout", "P", "ab\u00e9".slice(0, 2)) +
      rec(1, "stderr", "F", "err") +
      rec(2, "stdout", "P", "\u00e9c");
    const bytes = Buffer.from(text);
    // Feed byte by byte: records may arrive cut anywhere.
    const out: CriLogEntry[] = [];
    for (const b of bytes) out.push(...d.push(Buffer.of(b)));
    out.push(...d.push(Buffer.from(rec(3, "stdout", "F", "!"))));
    expect(out.map((e) => [e.stream, e.content, e.parts])).toEqual([
      ["stderr", "err", 1],
      ["stdout", "ab\u00e9c!", 3],
    ]);
    expect(out[1]?.timestamp).toBe(ts(3));
    // A UTF-8 character cut between two records' bytes.
    const e = Buffer.from("\u00e9");
    const d2 = new CriLogDecoder();
    const cut = Buffer.concat([
      Buffer.from(`${ts(1)} stdout P `),
      e.subarray(0, 1),
      Buffer.from(`\n${ts(1)} stdout F `),
      e.subarray(1),
      Buffer.from("\n"),
    ]);
    expect(d2.push(cut)[0]?.content).toBe("\u00e9");
  });
});

describe("readCriLogs", () => {
  const big = "y".repeat(40 * 1024 + 7);
  const file = join(dir, "c.log");
  writeFileSync(
    file,
    rec(1, "stdout", "F", "first") +
      split(2, "stdout", big) +
      rec(3, "stderr", "F", "warn") +
      rec(4, "stdout", "F", "last"),
  );

  it("reads a line over 16 KiB, split into partials, back whole", async () => {
    const lines = await all(file);
    expect(lines.map((l) => l.content.length)).toEqual([5, big.length, 4, 4]);
    expect(lines[1]?.content).toBe(big);
    expect(lines[1]?.parts).toBe(3);
    expect(lines[1]?.partial).toBe(false);
  });

  it("tail, since and stream filters", async () => {
    expect((await all(file, { tail: 2 })).map((l) => l.content)).toEqual(["warn", "last"]);
    expect((await all(file, { tail: 0 })).length).toBe(0);
    expect((await all(file, { since: new Date(ts(3)) })).map((l) => l.content)).toEqual(["warn", "last"]);
    expect((await all(file, { streams: ["stderr"] })).map((l) => l.content)).toEqual(["warn"]);
  });

  it("a trailing partial with no final part comes out marked partial", async () => {
    const f = join(dir, "cut.log");
    writeFileSync(f, rec(1, "stdout", "F", "a") + rec(2, "stdout", "P", "half"));
    const lines = await all(f);
    expect(lines.at(-1)).toMatchObject({ content: "half", partial: true, timestamp: ts(2) });
  });

  it("follows appends, partials completed later, rotation by rename, and stops on abort", async () => {
    const f = join(dir, "follow.log");
    writeFileSync(f, rec(1, "stdout", "F", "old"));
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of readCriLogs(f, { follow: true, tail: 0, signal: ac.signal, pollInterval: 50 })) {
        seen.push(e.content);
        if (e.content === "after-rotate") ac.abort();
      }
    })();
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await wait(100);
    appendFileSync(f, rec(2, "stdout", "F", "new") + rec(3, "stdout", "P", "par"));
    await wait(150);
    appendFileSync(f, rec(3, "stdout", "F", "tial"));
    await wait(150);
    // Rotation as the kubelet does it: the runtime still writes to the renamed file briefly, then reopens.
    renameSync(f, `${f}.20260102-030405`);
    appendFileSync(`${f}.20260102-030405`, rec(4, "stdout", "F", "before-rotate"));
    writeFileSync(f, rec(5, "stdout", "F", "after-rotate"));
    await expect(reading).rejects.toBeInstanceOf(AbortedError);
    expect(seen).toEqual(["new", "partial", "before-rotate", "after-rotate"]);
  });

  it("a truncated file is read again from the start", async () => {
    const f = join(dir, "trunc.log");
    writeFileSync(f, rec(1, "stdout", "F", "one-long-line-here"));
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of readCriLogs(f, { follow: true, signal: ac.signal, pollInterval: 50 })) {
        seen.push(e.content);
        if (e.content === "two") ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 150));
    writeFileSync(f, rec(2, "stdout", "F", "two"));
    await expect(reading).rejects.toBeInstanceOf(AbortedError);
    expect(seen).toEqual(["one-long-line-here", "two"]);
  });
});

describe("formatCriLogRecords", () => {
  const t = "2026-01-02T03:04:05.000Z";
  it("writes whole lines as F, a trailing piece as P, and splits long lines", () => {
    const out = formatCriLogRecords("stdout", Buffer.from("a\nbc\nde"), t).toString();
    expect(out).toBe(`${t} stdout F a\n${t} stdout F bc\n${t} stdout P de\n`);
    expect(formatCriLogRecords("stderr", Buffer.from("12345\n"), t, 2).toString()).toBe(
      `${t} stderr P 12\n${t} stderr P 34\n${t} stderr F 5\n`,
    );
    expect(formatCriLogRecords("stdout", Buffer.from("\n"), t).toString()).toBe(`${t} stdout F \n`);
  });

  it("round-trips any bytes through the decoder", () => {
    const bytes = Buffer.from([0, 1, 255, 0x0a, 0x20, 0x0a, 0x0a, 7]);
    const d = new CriLogDecoder();
    const lines = [...d.push(formatCriLogRecords("stdout", bytes, t, 3)), ...d.end()];
    const back = Buffer.concat(
      lines.map((l) => (l.partial ? l.data : Buffer.concat([l.data, Buffer.from("\n")]))),
    );
    expect([...back]).toEqual([...bytes]);
  });

  it("ends a follow once `until` says the writer is done", async () => {
    const path = join(dir, "until.log");
    writeFileSync(path, formatCriLogRecords("stdout", Buffer.from("one\n"), t));
    let done = false;
    setTimeout(() => {
      appendFileSync(path, formatCriLogRecords("stdout", Buffer.from("two"), t));
      done = true;
    }, 100);
    const got = await all(path, { follow: true, pollInterval: 20, until: () => done });
    expect(got.map((e) => [e.content, e.partial])).toEqual([
      ["one", false],
      ["two", true],
    ]);
  });
});
