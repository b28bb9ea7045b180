// Fenced code blocks of a Markdown file, read by CommonMark's rules for fences: an opening fence of three
// or more backticks or tildes indented at most three spaces, an info string whose first word is the
// language, and a closing fence of the same character, at least as long, with nothing after it. A fence
// inside another block's content does not count; an unclosed block runs to the end of the file.
// Also which Markdown files the consumer test reads, and where each block's snippet goes.
import { readdirSync } from "node:fs";
import { join } from "node:path";

/** The comment that keeps the next block out of the consumer test; say why after it. */
export const NOT_STANDALONE = "<!-- consumer-test: not standalone";

/**
 * @param {string} text
 * @returns {{ lang: string, code: string, line: number, skip: string | undefined }[]} `line` is the
 *   1-based line of the block's first line of code; `skip` is the reason given in a NOT_STANDALONE comment
 *   on the line before the opening fence.
 */
export function codeBlocks(text) {
  const lines = text.split(/\r?\n/);
  const blocks = [];
  let open;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (open) {
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
      if (close?.[1]?.[0] === open.char && close[1].length >= open.length) {
        blocks.push({ ...open.block, code: open.body.join("\n") });
        open = undefined;
      } else {
        // Content keeps what is indented beyond the fence's own indentation.
        open.body.push(line.replace(new RegExp(`^ {0,${open.indent}}`), ""));
      }
      continue;
    }
    const fence = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
    if (!fence) continue;
    const [, indent = "", marks = "", info = ""] = fence;
    // A backtick fence's info string may not contain a backtick (it would be inline code).
    if (marks[0] === "`" && info.includes("`")) continue;
    const previous = (lines[i - 1] ?? "").trim();
    const skip = previous.startsWith(NOT_STANDALONE)
      ? previous.slice(NOT_STANDALONE.length).replace(/-->$/, "").replace(/^:/, "").trim() ||
        "no reason given"
      : undefined;
    open = {
      char: marks[0],
      length: marks.length,
      indent: indent.length,
      body: [],
      block: { lang: (info.trim().split(/\s+/)[0] ?? "").toLowerCase(), line: i + 2, skip },
    };
  }
  if (open) blocks.push({ ...open.block, code: open.body.join("\n") });
  return blocks;
}

/**
 * The Markdown files whose blocks the consumer test typechecks, relative to `repo`: the root README, the
 * package READMEs it is given, then every `docs/*.md` (sorted; none when there is no docs folder).
 * @param {string} repo
 * @param {string[]} packageReadmes
 * @returns {string[]}
 */
export function snippetSources(repo, packageReadmes) {
  let docs = [];
  try {
    docs = readdirSync(join(repo, "docs"), { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(".md"))
      .map((e) => `docs/${e.name}`)
      .sort();
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== "ENOENT") throw err;
  }
  return ["README.md", ...packageReadmes, ...docs];
}

/**
 * The file (under the app) that the `index`-th block (0-based) of a Markdown file is written to:
 * `README.md` -> `snippets/root-1.ts`, `packages/grpc/README.md` -> `snippets/grpc-1.ts`,
 * `docs/cri.md` -> `snippets/docs-cri-1.ts`.
 * @param {string} source
 * @param {number} index
 * @returns {string}
 */
export function snippetFile(source, index) {
  const stem =
    source === "README.md"
      ? "root"
      : (/^packages\/([^/]+)\/README\.md$/.exec(source)?.[1] ??
        source.replace(/\.md$/i, "").replace(/[^A-Za-z0-9_.-]+/g, "-"));
  return `snippets/${stem}-${index + 1}.ts`;
}
