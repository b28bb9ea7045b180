// The consumer test: berth as a user gets it from npm. Packs every publishable package, checks what each
// tarball holds (and runs publint and are-the-types-wrong on the tarballs themselves), installs them into a
// fresh app outside the repository (npm, no workspace links; third-party dependencies from the registry),
// typechecks every ```ts block of the READMEs and docs/*.md there, with an import of every entry point,
// under strict settings with `nodenext` and with `bundler` resolution, then runs a small app (scripts/consumer/app.ts)
// against the daemons the environment names (run it through scripts/with-runtimes.mjs).
//
// `node scripts/consumer-test.mjs [--no-run]`; needs the packages built (npm run setup).
// BERTH_KEEP_CONSUMER=1 keeps the temporary app and prints where it is.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { builtinModules, createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { codeBlocks, snippetFile, snippetSources } from "./consumer/markdown.mjs";

const repo = resolve(fileURLToPath(new URL("..", import.meta.url)));
const run = !process.argv.includes("--no-run");
const t0 = performance.now();
const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const step = (what) => console.log(`\n--- [consumer +${since()}] ${what}`);

function fail(message) {
  console.error(`\nconsumer test FAILED: ${message}`);
  process.exitCode = 1;
  finish();
  process.exit(1);
}

/** Runs a command, printing its output; fails the test with `what` when it fails. */
function sh(cmd, args, { cwd, what, env = process.env, quiet = false }) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
  if (r.status !== 0) {
    if (out) console.log(out);
    fail(`${what} (exit ${r.status ?? r.signal})`);
  }
  if (!quiet && out) console.log(out);
  return r.stdout ?? "";
}

const dir = mkdtempSync(join(tmpdir(), "berth-consumer-"));
if (!relative(repo, dir).startsWith("..")) fail(`${dir} is inside the repository`);
function finish() {
  if (process.env.BERTH_KEEP_CONSUMER === "1") console.log(`kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

// --- the publishable packages
const packages = readdirSync(join(repo, "packages"))
  .map((name) => ({ folder: join(repo, "packages", name) }))
  .map((p) => ({ ...p, json: JSON.parse(readFileSync(join(p.folder, "package.json"), "utf8")) }))
  .filter((p) => !p.json.private);

step(`npm pack: ${packages.map((p) => p.json.name).join(", ")}`);
const tarballs = join(dir, "tarballs");
mkdirSync(tarballs);
const packed = JSON.parse(
  sh(
    "npm",
    ["pack", "--json", "--pack-destination", tarballs, ...packages.flatMap((p) => ["-w", p.json.name])],
    {
      cwd: repo,
      what: "npm pack",
      quiet: true,
    },
  ),
);

/** Every file a package's `exports` map points at. */
function exportTargets(exportsField) {
  const out = [];
  const walk = (v) => {
    if (typeof v === "string") out.push(v.replace(/^\.\//, ""));
    else if (v && typeof v === "object") for (const x of Object.values(v)) walk(x);
  };
  walk(exportsField);
  return out;
}

for (const p of packed) {
  const files = new Set(p.files.map((f) => f.path));
  const pkg = packages.find((x) => x.json.name === p.name)?.json;
  const missing = ["package.json", "README.md", "LICENSE", ...exportTargets(pkg?.exports)].filter(
    (f) => !files.has(f),
  );
  const unwanted = [...files].filter((f) =>
    /(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.|\.tsbuildinfo$/.test(f),
  );
  const types = [...files].filter((f) => f.startsWith("dist/") && f.endsWith(".d.ts")).length;
  console.log(
    `${p.filename}: ${p.files.length} files, ${(p.size / 1024).toFixed(0)} KiB packed, ${types} .d.ts` +
      (missing.length ? `; MISSING ${missing.join(", ")}` : "") +
      (unwanted.length ? `; UNWANTED ${unwanted.slice(0, 5).join(", ")}` : ""),
  );
  if (missing.length || unwanted.length || types === 0) fail(`${p.name}'s tarball holds the wrong files`);
}

step("publint and are-the-types-wrong on the tarballs");
const bin = (name) => join(repo, "node_modules", ".bin", name);
for (const p of packed) {
  const tgz = join(tarballs, p.filename);
  sh(bin("publint"), ["run", tgz, "--strict"], { cwd: dir, what: `publint ${p.filename}`, quiet: true });
  sh(bin("attw"), [tgz, "--profile", "esm-only", "--format", "table-flipped"], {
    cwd: dir,
    what: `attw ${p.filename}`,
    quiet: true,
  });
  console.log(`${p.filename}: publint --strict and attw --profile esm-only pass`);
}

// --- the app
step("a fresh app outside the repository, the tarballs installed with npm");
const app = join(dir, "app");
mkdirSync(join(app, "snippets"), { recursive: true });
const versionOf = (name) =>
  JSON.parse(readFileSync(join(repo, "node_modules", name, "package.json"), "utf8")).version;
writeFileSync(
  join(app, "package.json"),
  `${JSON.stringify(
    {
      name: "berth-consumer-app",
      private: true,
      type: "module",
      dependencies: Object.fromEntries(packed.map((p) => [p.name, `file:../tarballs/${p.filename}`])),
      devDependencies: {
        // what the app itself compiles and tests with; vitest for the conformance suite's snippet
        typescript: versionOf("typescript"),
        "@types/node": `^${versionOf("@types/node").split(".")[0]}`,
        vitest: versionOf("vitest"),
      },
    },
    null,
    2,
  )}\n`,
);
sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], {
  cwd: app,
  what: "npm install in the app",
});
for (const p of packed) {
  const at = join(app, "node_modules", p.name);
  if (lstatSync(at).isSymbolicLink()) fail(`${p.name} is a link in the app, not an installed tarball`);
}
const ssh2 = spawnSync("node", ["-e", "import('ssh2').then(() => process.exit(0), () => process.exit(1))"], {
  cwd: app,
});
if (ssh2.status === 0) fail("ssh2 was installed into the app: it should be an optional peer dependency");
console.log(`installed ${packed.length} tarballs; ssh2 (optional peer) not installed`);

// Every package a shipped declaration file imports must be one the package depends on (not an optional
// peer, which may be absent) and have types of its own or an @types dependency: tsc below sees only the
// files the entry points reach, this sees them all.
const builtin = new Set(builtinModules);
// Resolved as the app's own TypeScript resolves it, under both resolutions (no types found is TS7016).
const ts = createRequire(join(app, "package.json"))("typescript");
const resolutions = [
  { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
  { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler },
];
function hasTypes(spec, file) {
  return resolutions.every((options) => {
    const found = ts.resolveModuleName(
      spec,
      file,
      options,
      ts.sys,
      undefined,
      undefined,
      ts.ModuleKind.ESNext,
    );
    return /\.d\.[cm]?ts$/.test(found.resolvedModule?.resolvedFileName ?? "");
  });
}
const undeclared = [];
for (const p of packed) {
  const root = join(app, "node_modules", p.name);
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const optional = new Set(
    Object.keys(pkg.peerDependenciesMeta ?? {}).filter((n) => pkg.peerDependenciesMeta[n]?.optional),
  );
  const declared = new Set(
    [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})].filter(
      (n) => !optional.has(n),
    ),
  );
  for (const f of p.files.map((x) => x.path).filter((x) => x.endsWith(".d.ts"))) {
    const text = readFileSync(join(root, f), "utf8");
    for (const [, spec] of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"'.][^"']*)["']/g,
    )) {
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
      if (spec.startsWith("node:") || builtin.has(name)) continue;
      if (!declared.has(name)) undeclared.push(`${p.name}/${f} imports "${spec}", not a dependency`);
      else if (!hasTypes(spec, join(root, f)))
        undeclared.push(`${p.name}/${f} imports "${spec}", whose types are not installed with it`);
    }
  }
}
if (undeclared.length) {
  for (const u of undeclared) console.log(`  ${u}`);
  fail("shipped declarations import packages their package does not depend on");
}
console.log("every package the shipped declarations import is a dependency");

step("README and docs/ snippets and every entry point, typechecked under strict nodenext and bundler");
const readmes = snippetSources(
  repo,
  readdirSync(join(repo, "packages"))
    .map((name) => `packages/${name}/README.md`)
    .filter((f) => packages.some((p) => join(repo, f) === join(p.folder, "README.md"))),
);
/** snippet file -> where it came from, to point errors at the README line. */
const origin = new Map();
let skipped = 0;
for (const readme of readmes) {
  const blocks = codeBlocks(readFileSync(join(repo, readme), "utf8")).filter((b) =>
    ["ts", "typescript", "mts"].includes(b.lang),
  );
  blocks.forEach((b, i) => {
    if (b.skip) {
      console.log(`skipped ${readme}:${b.line} (${b.skip})`);
      skipped++;
      return;
    }
    const file = snippetFile(readme, i);
    // A block without imports is still a module (top-level await needs one); the line numbers stay.
    const code = /^\s*(import|export)\s/m.test(b.code) ? b.code : `${b.code}\nexport {};`;
    writeFileSync(join(app, file), `${code}\n`);
    origin.set(file, { readme, line: b.line });
  });
}
const entries = packed.flatMap((p) => {
  const pkg = packages.find((x) => x.json.name === p.name)?.json ?? {};
  return Object.keys(pkg.exports ?? { ".": "" })
    .filter((k) => k !== "./package.json")
    .map((k) => (k === "." ? p.name : `${p.name}/${k.slice(2)}`));
});
writeFileSync(
  join(app, "snippets", "entrypoints.ts"),
  `// Every entry point, so every public declaration is compiled, whether a README uses it or not.\n${entries
    .map((e, i) => `import * as entry${i} from "${e}";`)
    .join("\n")}\nexport const all = [${entries.map((_, i) => `entry${i}`).join(", ")}];\n`,
);
copyFileSync(join(repo, "scripts", "consumer", "app.ts"), join(app, "app.ts"));
console.log(
  `${origin.size} snippets from ${readmes.length} Markdown files${skipped ? ` (${skipped} marked not standalone)` : ""}, ${entries.length} entry points, app.ts`,
);

const strict = {
  target: "ES2022",
  lib: ["ES2023"],
  types: ["node"],
  strict: true,
  skipLibCheck: false,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
};
const configs = {
  nodenext: { ...strict, module: "nodenext", moduleResolution: "nodenext", outDir: "out" },
  bundler: { ...strict, module: "esnext", moduleResolution: "bundler", noEmit: true },
};
let typeErrors = false;
for (const [name, compilerOptions] of Object.entries(configs)) {
  const config = `tsconfig.${name}.json`;
  writeFileSync(
    join(app, config),
    JSON.stringify({ compilerOptions, include: ["app.ts", "snippets"] }, null, 2),
  );
  const r = spawnSync(join(app, "node_modules", ".bin", "tsc"), ["-p", config, "--pretty", "false"], {
    cwd: app,
    encoding: "utf8",
  });
  if (r.status === 0) {
    console.log(`${name}: tsc passes`);
    continue;
  }
  typeErrors = true;
  console.log(`${name}: tsc fails`);
  // Point each error at the README line it comes from.
  for (const line of `${r.stdout}${r.stderr}`.trim().split("\n")) {
    const m = /^(snippets\/[^(]+\.ts)\((\d+),(\d+)\)(.*)$/.exec(line);
    const from = m && origin.get(m[1]);
    console.log(from ? `  ${from.readme}:${from.line + Number(m[2]) - 1}:${m[3]}${m[4]}` : `  ${line}`);
  }
}
if (typeErrors) fail("the packages' types or the README snippets do not compile in a consumer app");

if (run) {
  step("the app, against the daemons the environment names");
  const r = spawnSync("node", ["out/app.js"], { cwd: app, stdio: "inherit", env: process.env });
  if (r.status !== 0) fail(`the app failed (exit ${r.status ?? r.signal})`);

  step("npx berth-sdk doctor --json, the bin from the installed tarball");
  const image = process.env.BERTH_TEST_IMAGE ?? "docker.io/library/busybox:latest";
  const doctor = spawnSync("npx", ["--no-install", "berth-sdk", "doctor", "--json", "--image", image], {
    cwd: app,
    encoding: "utf8",
    env: process.env,
    maxBuffer: 16 * 1024 * 1024,
  });
  let report;
  try {
    report = JSON.parse(doctor.stdout);
  } catch {
    console.log(`${doctor.stdout}${doctor.stderr}`);
    fail(`npx berth-sdk doctor printed no JSON (exit ${doctor.status ?? doctor.signal})`);
  }
  for (const b of report.backends) {
    const marks = b.checks.map((c) => `${c.name} ${c.status}`).join(", ");
    console.log(
      `${b.ok ? "ok  " : "FAIL"} ${b.backend} (${b.runtime?.name ?? "unreachable"} ${b.runtime?.version ?? ""}): ${marks}`,
    );
  }
  if (doctor.status !== 0 || !report.ok)
    fail(`npx berth-sdk doctor reported failures (exit ${doctor.status})`);
}

finish();
console.log(`\nconsumer test passed in ${since()}`);
// Keep the process from waiting on anything the checks above left open.
process.exit(0);
