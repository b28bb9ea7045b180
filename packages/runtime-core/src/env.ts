// Reading KEY=VALUE environment files such as the harness's `.runtimes/env`.
import { readFile } from "node:fs/promises";

/** Parse KEY=VALUE lines; blank lines and # comments are skipped, an `export ` prefix is allowed,
 *  surrounding single or double quotes are removed. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] ?? "";
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    out[m[1] as string] = value;
  }
  return out;
}

/** Reads and parses an env file (see parseEnvFile); file errors (ENOENT...) are thrown as they are. */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  return parseEnvFile(await readFile(path, "utf8"));
}
