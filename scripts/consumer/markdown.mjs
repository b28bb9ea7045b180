// Fenced code blocks of a Markdown file, read by CommonMark's rules for fences: an opening fence of three
// or more backticks or tildes indented at most three spaces, an info string whose first word is the
// language, and a closing fence of the same character, at least as long, with nothing after it. A fence
// inside another block's content does not count; an unclosed block runs to the end of the file.

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
