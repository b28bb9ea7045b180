// containerd and CRI: ts-proto generic service definitions (turned into @grpc/grpc-js clients by each
// package's hand-written channel layer), compiled with buf from npm so nothing is downloaded at run time.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fillDocs } from "./doc-fill.ts";
import { header, listFiles, repoRoot, specsDir } from "./util.ts";

const require = createRequire(import.meta.url);
const bin = (name: string) => join(repoRoot, "node_modules/.bin", name);

/** ts-proto options shared by both packages: ESM with .js suffixes, bigint for 64-bit integers
 *  (CRI timestamps are nanoseconds, too large for a number), Date for google.protobuf.Timestamp. */
const tsProtoOptions = [
  "outputServices=generic-definitions",
  "esModuleInterop=true",
  "importSuffix=.js",
  "forceLong=bigint",
  "useDate=true",
  "outputJsonMethods=false",
  "outputTypeRegistry=false",
  "exportCommonSymbols=false",
  "env=node",
];

interface ProtoJob {
  /** Human name of the spec for the header. */
  spec: string;
  /** Who the filled-in comment of an undescribed message or field names: "containerd's .proto". */
  docSource: string;
  /** Files to copy into the compile root: [source dir, destination dir inside root]. */
  roots: Array<[string, string]>;
  /** Paths (inside the compile root) to generate code for, and to leave out. */
  paths: string[];
  exclude: string[];
}

function compile(job: ProtoJob): Map<string, string> {
  const work = mkdtempSync(join(tmpdir(), "berth-gen-"));
  try {
    const root = join(work, "protos");
    for (const [src, dest] of job.roots) cpSync(src, join(root, dest), { recursive: true });
    writeFileSync(join(work, "buf.yaml"), "version: v2\nmodules:\n  - path: protos\n");
    const out = join(work, "out");
    const template = {
      version: "v2",
      plugins: [{ local: bin("protoc-gen-ts_proto"), out, opt: tsProtoOptions, strategy: "all" }],
    };
    execFileSync(
      bin("buf"),
      [
        "generate",
        "--template",
        JSON.stringify(template),
        ...job.paths.flatMap((p) => ["--path", join("protos", p)]),
        ...job.exclude.flatMap((p) => ["--exclude-path", join("protos", p)]),
      ],
      { cwd: work, stdio: ["ignore", "inherit", "inherit"] },
    );
    const files = new Map<string, string>();
    const head = header(job.spec, "ts-proto (scripts/codegen/protos.ts)");
    for (const file of listFiles(out, ".ts")) {
      const name = relative(out, file);
      const docSource = { what: job.docSource, typeNoun: "message" };
      files.set(name, head + fillDocs(name, readFileSync(file, "utf8"), docSource));
    }
    return files;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function generateProtos(): { containerd: Map<string, string>; cri: Map<string, string> } {
  const specs = specsDir();
  const googleRpc = join(dirname(require.resolve("google-proto-files/package.json")), "google/rpc");

  // containerd: every gRPC service (not the shim-side ttrpc APIs), their events and shared types.
  const ctdPrefix = "github.com/containerd/containerd/api";
  const ctdFiles = compile({
    spec: "containerd API protos (containerd/api 2.1, serves 1.6+), specs/containerd",
    docSource: "its .proto",
    roots: [
      [join(specs, "containerd"), "."],
      [googleRpc, "google/rpc"],
    ],
    paths: [`${ctdPrefix}/services`, `${ctdPrefix}/events`, `${ctdPrefix}/types`],
    exclude: [`${ctdPrefix}/services/ttrpc`],
  });
  ctdFiles.set("index.ts", containerdIndex(ctdFiles, ctdPrefix));

  // CRI runtime.v1 (RuntimeService, ImageService).
  const criFiles = compile({
    spec: "Kubernetes CRI runtime.v1 api.proto (cri-api 0.36), specs/cri/runtime/v1",
    docSource: "the CRI api.proto",
    roots: [[join(specs, "cri/runtime/v1"), "runtime/v1"]],
    paths: ["runtime/v1/api.proto"],
    exclude: [],
  });
  criFiles.set(
    "index.ts",
    `${header("Kubernetes CRI runtime.v1", "scripts/codegen/protos.ts")}export * from "./runtime/v1/api.js";\n`,
  );
  return { containerd: ctdFiles, cri: criFiles };
}

const camel = (parts: string[]) =>
  parts
    .map((p, i) => (i === 0 ? p : p.charAt(0).toUpperCase() + p.slice(1)))
    .join("")
    .replace(/[^A-Za-z0-9]/g, "");

/** containerd's index: one namespace export per proto file, named after its place in the API tree
 *  (services/containers/v1 -> containersV1, events/task -> taskEvents, types/mount -> mountTypes). */
function containerdIndex(files: Map<string, string>, prefix: string): string {
  const lines: string[] = [];
  for (const name of [...files.keys()].sort()) {
    if (!name.startsWith(`${prefix}/`)) continue;
    const parts = name
      .slice(prefix.length + 1)
      .replace(/\.ts$/, "")
      .split("/");
    const kind = parts.shift();
    let id: string;
    if (kind === "services") id = camel(parts.slice(0, -1));
    else {
      const rest = parts.filter((p, i) => p !== "api" && p !== parts[i - 1]);
      id = camel(rest) + (kind === "events" ? "Events" : "Types");
    }
    lines.push(`export * as ${id} from "./${name.replace(/\.ts$/, ".js")}";`);
  }
  return `${header("containerd API protos", "scripts/codegen/protos.ts")}${lines.join("\n")}\n`;
}
