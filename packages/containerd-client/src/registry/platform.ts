// Choosing one manifest from an index for a platform, the way containerd's default matcher does: same
// os and architecture, and a variant that the wanted one can run (arm v7 runs v6 and v5), best first.

/** An image platform, in the OCI image-spec's terms. */
export interface Platform {
  /** The operating system ("linux"). */
  os: string;
  /** The architecture, GOARCH-style ("amd64", "arm64"). */
  architecture: string;
  /** The CPU variant ("v8" for arm64, "v7" for arm), when it matters. */
  variant?: string | undefined;
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: "amd64",
  ia32: "386",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** The platform this process runs on, e.g. linux/amd64 or linux/arm/v7. */
export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform === "win32" ? "windows" : process.platform, architecture };
  if (architecture === "arm64") p.variant = "v8";
  if (architecture === "arm") {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    p.variant = `v${typeof v === "string" || typeof v === "number" ? v : "7"}`;
  }
  return p;
}

/** Parse "linux/arm64/v8" or "linux/amd64". */
export function parsePlatform(s: string): Platform {
  const [os = "", architecture = "", variant] = s.split("/");
  const p: Platform = { os, architecture: NODE_ARCH[architecture] ?? architecture };
  if (variant) p.variant = variant;
  return p;
}

/** A platform as "os/architecture[/variant]". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

function normalize(p: Platform): Platform {
  const architecture = NODE_ARCH[p.architecture] ?? p.architecture;
  let variant = p.variant || undefined;
  if (architecture === "arm64" && variant === undefined) variant = "v8";
  if (architecture === "arm" && variant === undefined) variant = "v7";
  return { os: p.os.toLowerCase(), architecture, variant };
}

/** Variants a wanted platform accepts, best first (undefined: any variant, no variant preferred). */
function acceptedVariants(want: Platform): (string | undefined)[] | undefined {
  if (want.architecture === "arm") {
    const n = Number(want.variant?.slice(1) ?? 7);
    return [8, 7, 6, 5].filter((v) => v <= n).map((v) => `v${v}`);
  }
  if (want.architecture === "arm64") return [want.variant ?? "v8"];
  if (want.variant === undefined) return undefined;
  return [want.variant];
}

/** Rank of a candidate for a wanted platform: lower is better, -1 when it does not match. */
export function platformRank(want: Platform, have: Platform | undefined): number {
  if (!have) return -1;
  const w = normalize(want);
  const h = normalize(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return -1;
  const accepted = acceptedVariants(w);
  if (accepted === undefined) return h.variant === undefined ? 0 : 1;
  const i = accepted.indexOf(h.variant);
  return i;
}

/** The best manifest of an index (or any list of manifests) for the platform, the first of the best
 *  when several rank alike; undefined when none matches. */
export function selectManifest<
  T extends {
    /** The platform the manifest is for (none: any). */
    platform?: Platform | undefined;
  },
>(entries: readonly T[], want: Platform): T | undefined {
  let best: T | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const entry of entries) {
    const rank = platformRank(want, entry.platform);
    if (rank >= 0 && rank < bestRank) {
      best = entry;
      bestRank = rank;
    }
  }
  return best;
}
