import { describe, expect, it } from "vitest";
import { isDigest, parseDigest, parseImageRef, ValidationError } from "../src/index.js";

const SHA256 = `sha256:${"a1".repeat(32)}`;
const SHA512 = `sha512:${"0f".repeat(64)}`;

function invalid(input: string): ValidationError {
  try {
    parseImageRef(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe("parseImageRef normalization", () => {
  it.each([
    ["busybox", "docker.io", "library/busybox", "latest", "busybox:latest"],
    ["busybox:1.36", "docker.io", "library/busybox", "1.36", "busybox:1.36"],
    ["library/busybox", "docker.io", "library/busybox", "latest", "busybox:latest"],
    ["docker.io/busybox", "docker.io", "library/busybox", "latest", "busybox:latest"],
    ["index.docker.io/busybox", "docker.io", "library/busybox", "latest", "busybox:latest"],
    ["index.docker.io/org/app:v1", "docker.io", "org/app", "v1", "org/app:v1"],
    ["org/app", "docker.io", "org/app", "latest", "org/app:latest"],
    ["docker.io/library/a/b", "docker.io", "library/a/b", "latest", "library/a/b:latest"],
    ["ghcr.io/org/app:1.0", "ghcr.io", "org/app", "1.0", "ghcr.io/org/app:1.0"],
    ["ghcr.io/app", "ghcr.io", "app", "latest", "ghcr.io/app:latest"],
    ["localhost/foo", "localhost", "foo", "latest", "localhost/foo:latest"],
    ["localhost:5000/foo/bar:dev", "localhost:5000", "foo/bar", "dev", "localhost:5000/foo/bar:dev"],
    ["127.0.0.1:5000/busybox:latest", "127.0.0.1:5000", "busybox", "latest", "127.0.0.1:5000/busybox:latest"],
    ["[::1]:5000/x", "[::1]:5000", "x", "latest", "[::1]:5000/x:latest"],
    ["[2001:db8::1]/x:t", "[2001:db8::1]", "x", "t", "[2001:db8::1]/x:t"],
    ["Registry/app", "Registry", "app", "latest", "Registry/app:latest"],
    ["a__b--c/d.e_f:X_Y.z-1", "docker.io", "a__b--c/d.e_f", "X_Y.z-1", "a__b--c/d.e_f:X_Y.z-1"],
  ])("%s", (input, registry, repository, tag, familiar) => {
    const ref = parseImageRef(input);
    const full = `${registry}/${repository}:${tag}`;
    expect(ref).toMatchObject({ registry, repository, tag, digest: undefined, original: input });
    expect(ref.toString()).toBe(full);
    expect(`${ref}`).toBe(full);
    expect(ref.familiar).toBe(familiar);
    expect(ref.name).toBe(`${registry}/${repository}`);
  });

  it("keeps a digest and does not invent a tag next to it", () => {
    const ref = parseImageRef(`busybox@${SHA256}`);
    expect(ref.tag).toBeUndefined();
    expect(ref.digest).toBe(SHA256);
    expect(ref.reference).toBe(SHA256);
    expect(ref.toString()).toBe(`docker.io/library/busybox@${SHA256}`);
    expect(ref.familiar).toBe(`busybox@${SHA256}`);
  });

  it("keeps both tag and digest, and the digest is what gets pulled", () => {
    const ref = parseImageRef(`127.0.0.1:5000/app:1.2@${SHA512}`);
    expect(ref).toMatchObject({ registry: "127.0.0.1:5000", repository: "app", tag: "1.2", digest: SHA512 });
    expect(ref.reference).toBe(SHA512);
    expect(ref.toString()).toBe(`127.0.0.1:5000/app:1.2@${SHA512}`);
  });

  it("uses the tag (default latest) as the reference without a digest", () => {
    expect(parseImageRef("busybox").reference).toBe("latest");
    expect(parseImageRef("busybox:musl").reference).toBe("musl");
  });

  it("maps Docker Hub to its registry API host and leaves other hosts alone", () => {
    expect(parseImageRef("busybox").registryHost).toBe("registry-1.docker.io");
    expect(parseImageRef("index.docker.io/x/y").registryHost).toBe("registry-1.docker.io");
    expect(parseImageRef("quay.io/x/y").registryHost).toBe("quay.io");
    expect(parseImageRef("[::1]:5000/x").registryHost).toBe("[::1]:5000");
  });

  it("reads a bare host:port as name:tag, as Docker does", () => {
    expect(parseImageRef("localhost:5000").toString()).toBe("docker.io/library/localhost:5000");
  });

  it("accepts names up to 255 characters and tags up to 128", () => {
    const repo = "a".repeat(255 - "example.com/".length);
    expect(parseImageRef(`example.com/${repo}`).name).toHaveLength(255);
    expect(parseImageRef(`busybox:${"t".repeat(128)}`).tag).toHaveLength(128);
  });
});

describe("parseImageRef rejects", () => {
  it.each([
    ["", /empty/],
    ["busybox ", /whitespace/],
    ["busybox\n", /whitespace/],
    ["busy\u0001box", /control characters/],
    ["Busybox", /must be lowercase/],
    ["org/MyApp", /must be lowercase/],
    ["docker.io/Org/app", /must be lowercase/],
    ["foo//bar", /empty path component/],
    ["foo/", /empty path component/],
    ["/foo", /empty path component/],
    ["ghcr.io/", /empty path component/],
    ["busybox:", /tag after ":" is empty/],
    [":latest", /repository name is empty/],
    ["busybox:.hidden", /tag ".hidden" is invalid/],
    ["busybox:a/b", /empty path component|invalid/],
    ["busybox@", /nothing follows "@"/],
    ["busybox@sha256", /no ":" found/],
    ["busybox@md5:0123456789abcdef0123456789abcdef", /unsupported digest algorithm "md5"/],
    [`busybox@sha256:${"a".repeat(63)}`, /sha256 digest has 64 hex characters, got 63/],
    [`busybox@sha256:${"a".repeat(65)}`, /got 65/],
    [`busybox@sha512:${"a".repeat(64)}`, /sha512 digest has 128 hex characters, got 64/],
    [`busybox@sha256:${"A".repeat(64)}`, /lowercase hex/],
    [`busybox@sha256:${"g".repeat(64)}`, /lowercase hex/],
    ["a-/b", /path component "a-" is invalid/],
    ["-a/b", /path component "-a" is invalid/],
    ["a..b", /path component "a..b" is invalid/],
    ["a___b", /path component "a___b" is invalid/],
    ["exa_mple.com/app", /registry host "exa_mple.com" is invalid$/],
    ["-bad.com/app", /registry host "-bad.com" is invalid/],
    ["bad..com/app", /empty host name component/],
    ["host.com:port/app", /invalid port "port"/],
    ["[::1/x", /unclosed|invalid/],
    ["[zz::1]:5000/x", /not a valid bracketed IPv6/],
    ["::1/x", /IPv6 addresses need brackets/],
    ["a".repeat(64), /64-character hex string is an image ID/],
  ])("%j", (input, message) => {
    const err = invalid(input);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(JSON.stringify(input));
    expect(err.code).toBe("Validation");
  });

  it("names longer than 255 characters, counting the normalized registry", () => {
    const repo = "a".repeat(255 - "example.com/".length + 1);
    expect(invalid(`example.com/${repo}`).message).toMatch(/256 characters long \(at most 255\)/);
    // "docker.io/library/" is added before the limit is applied.
    expect(invalid("b".repeat(240)).message).toMatch(/at most 255/);
  });

  it("tags longer than 128 characters", () => {
    expect(invalid(`busybox:${"t".repeat(129)}`).message).toMatch(/129 characters long \(at most 128\)/);
  });
});

describe("digests", () => {
  it("parses supported algorithms", () => {
    expect(parseDigest(SHA256)).toEqual({ algorithm: "sha256", hex: "a1".repeat(32) });
    expect(parseDigest(SHA512)).toEqual({ algorithm: "sha512", hex: "0f".repeat(64) });
    expect(parseDigest(`sha384:${"b".repeat(96)}`).algorithm).toBe("sha384");
  });

  it("validates algorithm and length", () => {
    expect(isDigest(SHA256)).toBe(true);
    expect(isDigest(SHA512)).toBe(true);
    expect(isDigest(`sha256:${"a".repeat(128)}`)).toBe(false);
    expect(isDigest(`sha512:${"a".repeat(64)}`)).toBe(false);
    expect(isDigest(`md5:${"a".repeat(32)}`)).toBe(false);
    expect(isDigest("a".repeat(64))).toBe(false);
    expect(isDigest(`SHA256:${"a".repeat(64)}`)).toBe(false);
    expect(isDigest(`sha256:${"a".repeat(64)} `)).toBe(false);
    expect(() => parseDigest("sha256:abc")).toThrow(ValidationError);
    expect(() => parseDigest("sha256:abc")).toThrow(
      /invalid digest "sha256:abc": a sha256 digest has 64 hex/,
    );
    expect(() => parseDigest(`blake9:${"a".repeat(64)}`)).toThrow(/unsupported digest algorithm "blake9"/);
  });
});
