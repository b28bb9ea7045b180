// Property tests of WWW-Authenticate handling: the parser reads any header without throwing and gives back
// the challenges a registry wrote; the registry client, answered with any challenge and any token-service
// reply, fails with a typed error (never a TypeError or SyntaxError). BERTH_FUZZ_RUNS sets the case count.
import { BerthError, ProtocolError } from "@berth/runtime-core";
import fc from "fast-check";
import { MockAgent } from "undici";
import { afterAll, describe, it } from "vitest";
import { fuzz, must, typedOnly } from "../../../test/support/fuzz-harness.js";
import { type AuthChallenge, parseWwwAuthenticate, RegistryClient } from "../src/registry/index.js";

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 12 });
const schemeToken = fc.oneof(fc.constantFrom("Bearer", "Basic", "bearer", "BASIC", "Digest"), token);
const paramName = fc.oneof(fc.constantFrom("realm", "service", "scope", "error", "Realm"), token);
/** Any value: written as a token when it is one, else quoted with \" and \\ escaped. */
const paramValue = fc.oneof(
  token,
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom("https://auth.example/token", "repository:a/b:pull push", 'a "q" \\ b', ""),
);
const challenge = fc.record({
  scheme: schemeToken,
  params: fc.uniqueArray(fc.tuple(paramName, paramValue), {
    maxLength: 5,
    selector: ([name]) => name.toLowerCase(),
  }),
});

function isToken(s: string): boolean {
  return s.length > 0 && [...s].every((c) => TOKEN_CHARS.includes(c));
}
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
function serialize(cs: { scheme: string; params: [string, string][] }[], forms: boolean[]): string {
  return cs
    .map(({ scheme, params }, i) => {
      const ps = params.map(
        ([k, v], j) => `${k}=${isToken(v) && forms[(i + j) % Math.max(forms.length, 1)] ? v : quote(v)}`,
      );
      return ps.length ? `${scheme} ${ps.join(", ")}` : scheme;
    })
    .join(", ");
}

const anyHeader = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 120 }),
  fc.string({ unit: fc.constantFrom(...' ,="\\\tBearer realm'), maxLength: 120 }),
  fc.tuple(fc.array(challenge, { maxLength: 4 }), fc.nat(), fc.nat()).map(([cs, cut, drop]) => {
    // A well-formed header cut short or with one character dropped.
    const h = serialize(cs, [true]);
    const at = drop % (h.length + 1);
    return (h.slice(0, at) + h.slice(at + 1)).slice(0, cut % (h.length + 1));
  }),
);

describe("fuzz: WWW-Authenticate parser", () => {
  it("parses any header without throwing, into well-formed challenges", async () => {
    await fuzz("www-authenticate parse (any header)", anyHeader, (h) => {
      let out: AuthChallenge[] = [];
      try {
        out = parseWwwAuthenticate(h);
      } catch (err) {
        // It has no reason to throw at all; if it ever does, it must at least be typed.
        if (!(err instanceof BerthError)) throw err;
      }
      for (const c of out) {
        must(isToken(c.scheme)).toBe(true);
        must(c.scheme).toBe(c.scheme.toLowerCase());
        for (const [k, v] of Object.entries(c.params)) {
          must(isToken(k)).toBe(true);
          must(k).toBe(k.toLowerCase());
          must(typeof v).toBe("string");
        }
      }
    });
  });

  it("gives back the challenges a registry wrote (schemes and names lowercased)", async () => {
    await fuzz(
      "www-authenticate round trip",
      fc.tuple(fc.array(challenge, { minLength: 1, maxLength: 4 }), fc.array(fc.boolean(), { minLength: 1 })),
      ([cs, forms]) => {
        const header = serialize(cs, forms);
        const want = cs.map(({ scheme, params }) => ({
          scheme: scheme.toLowerCase(),
          params: Object.fromEntries(params.map(([k, v]) => [k.toLowerCase(), v])),
        }));
        must(parseWwwAuthenticate(header)).toEqual(want);
      },
    );
  });

  it('found by fuzzing: a parameter named "__proto__" is kept', () => {
    const params = parseWwwAuthenticate('Bearer __proto__="x",realm=r')[0]?.params ?? {};
    must(Object.entries(params)).toEqual([
      ["__proto__", "x"],
      ["realm", "r"],
    ]);
  });
});

describe("fuzz: registry client challenge handling", () => {
  const origin = "http://127.0.0.1:5999";
  const agent = new MockAgent();
  agent.disableNetConnect();
  afterAll(() => agent.close());
  // What the fixture answers in the current case.
  let wwwAuthenticate = "";
  let tokenStatus = 200;
  let tokenBody = "";
  const pool = agent.get(origin);
  pool
    .intercept({ path: (p) => p.startsWith("/v2/"), method: "GET" })
    .reply(() => ({
      statusCode: 401,
      data: "",
      responseOptions: { headers: { "www-authenticate": wwwAuthenticate } },
    }))
    .persist();
  pool
    .intercept({ path: (p) => p.startsWith("/token"), method: "GET" })
    .reply(() => ({ statusCode: tokenStatus, data: tokenBody }))
    .persist();

  const realm = fc.oneof(
    fc.constantFrom(`${origin}/token`, `${origin}/token?x=1`, "http://example.invalid/token", "/token", ""),
    fc.string({ maxLength: 30 }),
    fc.webUrl().map((u) => u.replace(/^https?:/, "http:")),
  );
  const challengeHeader = fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .tuple(realm, paramValue, paramValue)
        .map(([r, svc, scope]) => `Bearer realm=${quote(r)},service=${quote(svc)},scope=${quote(scope)}`),
    },
    { weight: 1, arbitrary: fc.constantFrom('Basic realm="x"', "Basic", "Bearer", "") },
    { weight: 1, arbitrary: anyHeader },
  );
  const tokenReply = fc.record({
    status: fc.constantFrom(200, 200, 200, 401, 403, 500, 302),
    body: fc.oneof(
      fc.constantFrom(
        "",
        "null",
        "[]",
        "{}",
        '{"token":""}',
        '{"token":5}',
        '{"token":"t"}',
        '{"access_token":"a"}',
        "<html>",
      ),
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? ""),
      fc.string({ maxLength: 40 }),
    ),
  });

  it("fails typed whatever the challenge and the token service say", async () => {
    const client = new RegistryClient({
      dispatcher: agent,
      credentials: { username: "u", password: "p", serverAddress: "127.0.0.1:5999" },
    });
    await fuzz(
      "registry client challenges (mock registry)",
      fc.tuple(challengeHeader, tokenReply),
      async ([h, reply]) => {
        wwwAuthenticate = h;
        tokenStatus = reply.status;
        tokenBody = reply.body;
        const got = await typedOnly(() =>
          client.resolve("127.0.0.1:5999/app:1", { platform: { os: "linux", architecture: "amd64" } }),
        );
        // The registry always refuses, so nothing can resolve.
        must("error" in got).toBe(true);
      },
    );
  });

  it("found by fuzzing: a realm that is not a URL and a token reply that is not JSON are ProtocolErrors", async () => {
    const client = new RegistryClient({
      dispatcher: agent,
      credentials: { username: "u", password: "p", serverAddress: "127.0.0.1:5999" },
    });
    const resolve = () => client.resolve("127.0.0.1:5999/app:1").catch((e: unknown) => e);
    for (const [header, status, body] of [
      ['Bearer realm=" "', 200, "{}"],
      [`Bearer realm="${origin}/token"`, 200, "<html>"],
      [`Bearer realm="${origin}/token"`, 200, "null"],
      [`Bearer realm="${origin}/token"`, 200, '{"token":5}'],
    ] as const) {
      wwwAuthenticate = header;
      tokenStatus = status;
      tokenBody = body;
      must(await resolve()).toBeInstanceOf(ProtocolError);
    }
  });
});
