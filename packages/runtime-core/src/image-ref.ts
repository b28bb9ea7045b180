// Image references ("busybox", "ghcr.io/org/app:1.2@sha256:...") parsed and normalized the way the Docker
// CLI, containerd and CRI tools do, following the distribution/reference grammar:
//
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ domain "/" ] path-component [ "/" path-component ]*
//   domain     := ( domain-name | "[" ipv6 "]" ) [ ":" port ]
//   tag        := [\w][\w.-]{0,127}
//   digest     := algorithm ":" hex
//
// Every client package parses references here, so one input always means the same image everywhere.
import { ValidationError } from "./errors.js";

/** The registry a reference without one names: Docker Hub. */
export const DEFAULT_REGISTRY = "docker.io";
/** The host that actually serves Docker Hub's registry API. */
export const DOCKER_HUB_REGISTRY_HOST = "registry-1.docker.io";
/** The tag a reference with neither tag nor digest gets. */
export const DEFAULT_TAG = "latest";
/** distribution/reference's limit on the full name (registry + "/" + repository). */
export const MAX_NAME_LENGTH = 255;
/** The longest reference parsed at all: a name, a tag and a sha512 digest fit in about 520. */
export const MAX_REFERENCE_LENGTH = 1024;

const LEGACY_HUB_DOMAIN = "index.docker.io";
const OFFICIAL_PREFIX = "library/";

/** Hex lengths of the digest algorithms a registry may use (those Go's go-digest registers). */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST_ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;

/** A content digest split at its colon: `sha256:abc...` is `{ algorithm: "sha256", hex: "abc..." }`. */
export interface ParsedDigest {
  /** The algorithm (`sha256`, `sha384`, `sha512`, or another well-formed name). */
  algorithm: string;
  /** The digest's hex part, of the length its algorithm has. */
  hex: string;
}

/** A parsed, normalized image reference. */
export interface ImageRef {
  /** Registry host, with port if any; Docker Hub is always "docker.io". */
  readonly registry: string;
  /** Repository path; official Docker Hub images get "library/". */
  readonly repository: string;
  /** The tag; "latest" when the input had neither tag nor digest, undefined for a digest-only input. */
  readonly tag: string | undefined;
  /** "algorithm:hex" when the input pinned a digest. */
  readonly digest: string | undefined;
  /** The string that was parsed, unchanged. */
  readonly original: string;
  /** registry/repository, e.g. "docker.io/library/busybox". */
  readonly name: string;
  /** What to ask the registry for: the digest if present, else the tag. */
  readonly reference: string;
  /** The short form the Docker CLI prints: "busybox:latest", "org/app@sha256:...". */
  readonly familiar: string;
  /** Host to send registry HTTP requests to: docker.io becomes registry-1.docker.io. */
  readonly registryHost: string;
  /** Full normalized reference: "docker.io/library/busybox:latest". */
  toString(): string;
}

class NormalizedImageRef implements ImageRef {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag: string | undefined,
    readonly digest: string | undefined,
    readonly original: string,
  ) {}

  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  get reference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  get familiar(): string {
    let short = this.name;
    if (this.registry === DEFAULT_REGISTRY) {
      short = this.repository;
      // "library/" is dropped only for single-level official names, as the Docker CLI does.
      const rest = short.startsWith(OFFICIAL_PREFIX) ? short.slice(OFFICIAL_PREFIX.length) : undefined;
      if (rest !== undefined && !rest.includes("/")) short = rest;
      // A Hub path whose first component looks like a host ("a.b/app") would be read back as another
      // registry: keep "docker.io/" then, so the short form always names this same image.
      const [registry, repository] = splitRegistry(short);
      if (registry !== DEFAULT_REGISTRY || repository !== this.repository) short = this.name;
    }
    return short + this.suffix();
  }

  get registryHost(): string {
    return this.registry === DEFAULT_REGISTRY ? DOCKER_HUB_REGISTRY_HOST : this.registry;
  }

  toString(): string {
    return this.name + this.suffix();
  }

  private suffix(): string {
    return (
      (this.tag === undefined ? "" : `:${this.tag}`) + (this.digest === undefined ? "" : `@${this.digest}`)
    );
  }
}

function fail(input: string, what: string): never {
  throw new ValidationError(`invalid image reference ${JSON.stringify(input)}: ${what}`, {
    operation: "parseImageRef",
  });
}

/** Why a digest string is invalid, or undefined if it is valid. */
function digestProblem(s: string): string | undefined {
  const colon = s.indexOf(":");
  if (colon < 0) return 'a digest must look like "sha256:<hex>" (no ":" found)';
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  if (!algorithm) return "the digest algorithm is empty";
  if (!DIGEST_ALGORITHM.test(algorithm)) return `digest algorithm ${JSON.stringify(algorithm)} is malformed`;
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) {
    return `unsupported digest algorithm ${JSON.stringify(algorithm)} (supported: ${Object.keys(DIGEST_HEX_LENGTH).join(", ")})`;
  }
  if (!/^[a-f0-9]*$/.test(hex)) return `the ${algorithm} digest must be lowercase hex (0-9, a-f)`;
  if (hex.length !== want) return `a ${algorithm} digest has ${want} hex characters, got ${hex.length}`;
  return undefined;
}

/** True when s is a well-formed digest of a supported algorithm ("sha256:" + 64 lowercase hex). */
export function isDigest(s: string): boolean {
  return typeof s === "string" && digestProblem(s) === undefined;
}

/** Split a digest into algorithm and hex, validating both. Throws ValidationError. */
export function parseDigest(s: string): ParsedDigest {
  const problem = typeof s === "string" ? digestProblem(s) : "a digest must be a string";
  if (problem !== undefined) {
    throw new ValidationError(`invalid digest ${JSON.stringify(s)}: ${problem}`, {
      operation: "parseDigest",
    });
  }
  const colon = s.indexOf(":");
  return { algorithm: s.slice(0, colon), hex: s.slice(colon + 1) };
}

function domainProblem(domain: string): string | undefined {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith("[")) {
    const close = domain.indexOf("]");
    if (close < 0) return `registry ${JSON.stringify(domain)} has an unclosed "["`;
    host = domain.slice(0, close + 1);
    const rest = domain.slice(close + 1);
    if (rest) {
      if (!rest.startsWith(":"))
        return `registry ${JSON.stringify(domain)} has text after "]" that is not a port`;
      port = rest.slice(1);
    }
    if (!IPV6_HOST.test(host))
      return `registry ${JSON.stringify(domain)} is not a valid bracketed IPv6 address`;
  } else {
    const colon = domain.lastIndexOf(":");
    if (colon >= 0) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    if (!host) return `registry ${JSON.stringify(domain)} has an empty host name`;
    for (const part of host.split(".")) {
      if (!part) return `registry ${JSON.stringify(domain)} has an empty host name component`;
      if (!DOMAIN_COMPONENT.test(part)) {
        const hint = host.includes(":") ? ' (IPv6 addresses need brackets: "[::1]:5000")' : "";
        return `registry host ${JSON.stringify(host)} is invalid${hint}`;
      }
    }
  }
  if (port !== undefined && !PORT.test(port)) {
    return `registry ${JSON.stringify(domain)} has an invalid port ${JSON.stringify(port)}`;
  }
  return undefined;
}

/** Split "first/rest" into registry and repository the way the Docker CLI decides what a registry is. */
function splitRegistry(name: string): [registry: string, repository: string] {
  const slash = name.indexOf("/");
  if (slash < 0) return [DEFAULT_REGISTRY, OFFICIAL_PREFIX + name];
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let registry: string;
  let repository: string;
  if (first === LEGACY_HUB_DOMAIN) {
    [registry, repository] = [DEFAULT_REGISTRY, rest];
  } else if (first === "localhost" || /[.:]/.test(first) || first.toLowerCase() !== first) {
    // A dot, a port or an IPv6 colon marks a host; so does uppercase, which Hub namespaces never have.
    [registry, repository] = [first, rest];
  } else {
    [registry, repository] = [DEFAULT_REGISTRY, name];
  }
  if (registry === DEFAULT_REGISTRY && !repository.includes("/")) repository = OFFICIAL_PREFIX + repository;
  return [registry, repository];
}

/**
 * Parse and normalize an image reference. "busybox" becomes docker.io/library/busybox:latest;
 * "127.0.0.1:5000/app@sha256:..." keeps its registry and digest. Throws ValidationError naming the input
 * and what is wrong with it.
 */
export function parseImageRef(input: string): ImageRef {
  if (typeof input !== "string") {
    throw new ValidationError(`invalid image reference: expected a string, got ${typeof input}`, {
      operation: "parseImageRef",
    });
  }
  if (input === "") fail(input, "it is empty");
  // Before anything scans it: the grammar's own limits add up to about 520 characters.
  if (input.length > MAX_REFERENCE_LENGTH) {
    throw new ValidationError(
      `invalid image reference ${JSON.stringify(input.slice(0, 60))}...: it is ${input.length} characters long (at most ${MAX_REFERENCE_LENGTH})`,
      { operation: "parseImageRef" },
    );
  }
  if (/\s/.test(input) || [...input].some((c) => c < " " || c === "\x7f")) {
    fail(input, "it contains whitespace or control characters");
  }
  if (IMAGE_ID.test(input)) {
    fail(input, "a 64-character hex string is an image ID, not a repository name");
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest) fail(input, 'nothing follows "@" (expected a digest such as sha256:<hex>)');
    const problem = digestProblem(digest);
    if (problem !== undefined) fail(input, problem);
  }

  let tag: string | undefined;
  const colon = rest.indexOf(":", rest.lastIndexOf("/") + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tag) fail(input, 'the tag after ":" is empty');
    if (tag.length > 128) fail(input, `the tag is ${tag.length} characters long (at most 128)`);
    if (!TAG.test(tag)) {
      fail(
        input,
        `tag ${JSON.stringify(tag)} is invalid (letters, digits, "_", "." and "-", not starting with "." or "-")`,
      );
    }
  }

  if (!rest) fail(input, "the repository name is empty");
  const [registry, repository] = splitRegistry(rest);
  const registryProblem = domainProblem(registry);
  if (registryProblem !== undefined) fail(input, registryProblem);
  for (const component of repository.split("/")) {
    if (!component) fail(input, "the repository has an empty path component (leading, trailing or double /)");
    if (component.toLowerCase() !== component) {
      fail(input, `repository name ${JSON.stringify(repository)} must be lowercase`);
    }
    if (!PATH_COMPONENT.test(component)) {
      fail(
        input,
        `repository path component ${JSON.stringify(component)} is invalid ` +
          '(lowercase letters and digits, separated by ".", "_", "__" or "-")',
      );
    }
  }
  const name = `${registry}/${repository}`;
  if (name.length > MAX_NAME_LENGTH) {
    fail(
      input,
      `the name ${JSON.stringify(name)} is ${name.length} characters long (at most ${MAX_NAME_LENGTH})`,
    );
  }

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return new NormalizedImageRef(registry, repository, tag, digest, input);
}
