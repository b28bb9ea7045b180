// WWW-Authenticate challenges (RFC 7235): `Bearer realm="...",service="...",scope="..."` or `Basic realm=...`.
// A header may carry several challenges; parameters are tokens or quoted strings with backslash escapes.

/** One challenge of a WWW-Authenticate header: its scheme and its parameters (realm, service, scope...). */
export interface AuthChallenge {
  /** Lowercased scheme: "bearer", "basic". */
  scheme: string;
  /** Parameter names lowercased. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * The challenges of a WWW-Authenticate header, in the order given. Lenient: it never throws and skips
 * what it cannot read; the token68 form (`Basic abc==`), which registries do not send, is not read as such.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    let s = "";
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++;
      s += header[i];
      i++;
    }
    i++; // closing quote
    return s;
  };
  let current: AuthChallenge | undefined;
  while (i < n) {
    skipSpace();
    if (header[i] === ",") {
      i++;
      continue;
    }
    const token = readToken();
    if (!token) {
      i++; // not a token character: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (header[i] === "=" && current) {
      i++;
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      current.params[token.toLowerCase()] = value;
    } else {
      // No prototype: a parameter named "__proto__" is kept like any other instead of vanishing.
      current = { scheme: token.toLowerCase(), params: Object.create(null) as Record<string, string> };
      out.push(current);
      // token68 form (`Basic abc==`) is not used by registries; skip to the next comma-separated item
    }
  }
  return out;
}
