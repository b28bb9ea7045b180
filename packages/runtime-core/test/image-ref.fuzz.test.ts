// Property tests of image reference parsing: any string parses or is a ValidationError; whatever parses is
// grammatical and stable (parse(toString(parse(x))) and parse(familiar) name the same image); references
// built from the grammar parse to the parts they were built from. BERTH_FUZZ_RUNS sets the case count.
import fc from "fast-check";
import { describe, it } from "vitest";
import { expectTyped, fuzz, must } from "../../../test/support/fuzz-harness.js";
import {
  type ImageRef,
  isDigest,
  MAX_NAME_LENGTH,
  parseDigest,
  parseImageRef,
  ValidationError,
} from "../src/index.js";

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;

/** Strings over an alphabet (fc.stringMatching is exact but several times slower). */
const over = (chars: string, minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...chars), minLength, maxLength });
const LOWER = "abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM = `${LOWER}ABCDEFGHIJKLMNOPQRSTUVWXYZ`;
const HEX = "0123456789abcdef";

const digest = fc.oneof(
  over(HEX, 64, 64).map((h) => `sha256:${h}`),
  over(HEX, 96, 96).map((h) => `sha384:${h}`),
  over(HEX, 128, 128).map((h) => `sha512:${h}`),
);
/** Runs of [a-z0-9] joined by ".", "_", "__" or dashes: PATH_COMPONENT by construction. */
const pathComponent = fc
  .tuple(
    over(LOWER, 1, 6),
    fc.array(fc.tuple(fc.constantFrom(".", "_", "__", "-", "--"), over(LOWER, 1, 4)), { maxLength: 3 }),
  )
  .map(([head, rest]) => head + rest.map(([sep, run]) => sep + run).join(""));
const tag = fc
  .tuple(over(`${ALNUM}_`, 1, 1), fc.oneof(over(`${ALNUM}_.-`, 0, 12), over("a.-_", 127, 127)))
  .map(([a, b]) => a + b);
/** [a-zA-Z0-9] at both ends, dashes allowed inside: DOMAIN_COMPONENT by construction. */
const domainComponent = fc
  .tuple(over(ALNUM, 1, 1), fc.option(fc.tuple(over(`${ALNUM}-`, 0, 6), over(ALNUM, 1, 1))))
  .map(([a, rest]) => (rest ? a + rest[0] + rest[1] : a));
const port = fc.integer({ min: 0, max: 99999 }).map(String);
/** Registries the parser must recognize as a registry: a dot, a port, localhost, or IPv6 in brackets. */
const domain = fc.oneof(
  fc.array(domainComponent, { minLength: 2, maxLength: 4 }).map((parts) => parts.join(".")),
  fc.tuple(domainComponent, port).map(([h, p]) => `${h}:${p}`),
  fc.constantFrom("localhost", "localhost:5000", "[::1]", "[::1]:5000", "docker.io", "index.docker.io"),
  fc
    .tuple(over(HEX, 0, 4), over(`${HEX}:`, 1, 10), fc.option(port))
    .map(([a, b, p]) => `[${a}:${b}]${p ? `:${p}` : ""}`),
);

interface Built {
  input: string;
  registry: string;
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

/** References built from the grammar, with the parts the parser must find in them. */
const wellFormed: fc.Arbitrary<Built> = fc
  .record({
    domain: fc.option(domain, { nil: undefined }),
    path: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  // Without a registry, a first component that looks like a host would be taken for one.
  .filter(
    ({ domain, path }) =>
      domain !== undefined || path.length === 1 || !/[.:]|^localhost$/.test(path[0] as string),
  )
  // A bare 64-character hex string is an image ID, not a name.
  .filter(
    ({ domain, path, tag, digest }) =>
      domain !== undefined ||
      tag !== undefined ||
      digest !== undefined ||
      !/^[a-f0-9]{64}$/.test(path.join("/")),
  )
  .map(({ domain, path, tag, digest }) => {
    const input =
      (domain === undefined ? "" : `${domain}/`) +
      path.join("/") +
      (tag === undefined ? "" : `:${tag}`) +
      (digest === undefined ? "" : `@${digest}`);
    const registry = domain === undefined || domain === "index.docker.io" ? "docker.io" : domain;
    let repository = path.join("/");
    if (registry === "docker.io" && path.length === 1) repository = `library/${repository}`;
    return { input, registry, repository, tag: tag ?? (digest === undefined ? "latest" : undefined), digest };
  });

/** A well-formed reference with a few characters inserted, removed or replaced. */
const mutated = fc
  .tuple(
    wellFormed,
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.constantFrom("insert", "delete", "replace"),
        fc.constantFrom(..."/:@.-_[]AZaz09 \t\n\0é%"),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([b, edits]) => {
    let s = b.input;
    for (const [at, op, ch] of edits) {
      const i = at % (s.length + 1);
      s =
        op === "insert"
          ? s.slice(0, i) + ch + s.slice(i)
          : s.slice(0, i) + (op === "replace" ? ch : "") + s.slice(i + 1);
    }
    return s;
  });

const anyInput = fc.oneof(
  mutated,
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.constantFrom(..."ab1:/@.-_[]A"), maxLength: 40 }),
  wellFormed.map((b) => b.input),
);

/** Whatever parsed must satisfy the grammar and survive printing and parsing again. */
function checkParsed(ref: ImageRef): void {
  for (const c of ref.repository.split("/")) must(c).toMatch(PATH_COMPONENT);
  if (ref.tag !== undefined) must(ref.tag).toMatch(TAG);
  if (ref.digest !== undefined) must(isDigest(ref.digest)).toBe(true);
  must(ref.tag !== undefined || ref.digest !== undefined).toBe(true);
  must(ref.name.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
  const again = parseImageRef(ref.toString());
  must(again.toString()).toBe(ref.toString());
  must([again.registry, again.repository, again.tag, again.digest]).toEqual([
    ref.registry,
    ref.repository,
    ref.tag,
    ref.digest,
  ]);
  const short = parseImageRef(ref.familiar);
  must(short.toString()).toBe(ref.toString());
  must(short.familiar).toBe(ref.familiar);
}

describe("fuzz: image references", () => {
  it("found by fuzzing: a Hub path that starts like a host keeps docker.io in its familiar form", () => {
    // "a.b/app" alone would name registry a.b: the short form must not send a pull to another host.
    must(parseImageRef("docker.io/a.b/app").familiar).toBe("docker.io/a.b/app:latest");
    must(parseImageRef("docker.io/index.docker.io/x").familiar).toBe("docker.io/index.docker.io/x:latest");
    must(parseImageRef("docker.io/localhost/x").familiar).toBe("docker.io/localhost/x:latest");
    must(parseImageRef("docker.io/org/app").familiar).toBe("org/app:latest");
    must(parseImageRef("busybox").familiar).toBe("busybox:latest");
  });

  it("parseImageRef returns a stable, grammatical ref or throws ValidationError, for any string", async () => {
    await fuzz("image-ref parseImageRef (any string)", anyInput, (input) => {
      let ref: ImageRef;
      try {
        ref = parseImageRef(input);
      } catch (err) {
        expectTyped(err);
        must(err).toBeInstanceOf(ValidationError);
        return;
      }
      must(ref.original).toBe(input);
      checkParsed(ref);
    });
  });

  it("references built from the grammar parse to their parts (or are refused only for length)", async () => {
    await fuzz("image-ref parseImageRef (grammar oracle)", wellFormed, (b) => {
      const fullName = `${b.registry}/${b.repository}`;
      if (fullName.length > MAX_NAME_LENGTH) {
        must(() => parseImageRef(b.input)).toThrow(ValidationError);
        return;
      }
      const ref = parseImageRef(b.input);
      must({
        registry: ref.registry,
        repository: ref.repository,
        tag: ref.tag,
        digest: ref.digest,
      }).toEqual({
        registry: b.registry,
        repository: b.repository,
        tag: b.tag,
        digest: b.digest,
      });
      checkParsed(ref);
    });
  });

  it("parseDigest accepts exactly what isDigest accepts, and throws only ValidationError", async () => {
    const input = fc.oneof(
      digest,
      digest.map((d) => d.toUpperCase()),
      digest.map((d) => d.slice(0, -1)),
      fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 70 })).map(([a, h]) => `${a}:${h}`),
      fc.string({ maxLength: 40 }),
    );
    await fuzz("image-ref parseDigest", input, (s) => {
      try {
        const d = parseDigest(s);
        must(isDigest(s)).toBe(true);
        must(`${d.algorithm}:${d.hex}`).toBe(s);
      } catch (err) {
        expectTyped(err);
        must(err).toBeInstanceOf(ValidationError);
        must(isDigest(s)).toBe(false);
      }
    });
  });
});
