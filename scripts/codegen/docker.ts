// Docker Engine API: models, the operation table and the typed DockerApi surface, generated from the
// Engine API swagger (v1.51). How each operation's response is read, and where it sits on the client,
// is not in the swagger: the table below says it, and the generator refuses to run when the table and
// the spec disagree about which operations exist.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { BodyKind, ParamEncoding, ResponseKind } from "../../packages/docker-client/src/operation.ts";
import { header, repoRoot, specsDir, writeTree } from "./util.ts";

/** The spec the client is generated from, and the oldest one we compare against for `minVersion`. */
export const dockerSpecVersion = "v1.51";
export const dockerBaseVersion = "v1.41";
/** The version reported for operations absent from the base spec. */
const afterBaseVersion = "1.42";

export const dockerOutDir = join(repoRoot, "packages/docker-client/src/generated");

const source = `Docker Engine API v1.51 (swagger.yaml from golang-github-docker-docker-dev 28.5.2), specs/docker/${dockerSpecVersion}`;

// ---------------------------------------------------------------------------------------------------
// The table: every operation of the spec, its place on the client and how its response is read.

export const dockerGroups = [
  "containers",
  "images",
  "exec",
  "networks",
  "volumes",
  "system",
  "swarm",
  "nodes",
  "services",
  "tasks",
  "secrets",
  "configs",
  "plugins",
  "distribution",
  "session",
] as const;
export type DockerGroup = (typeof dockerGroups)[number];

export interface TableEntry {
  group: DockerGroup;
  name: string;
  response: ResponseKind;
  /** The request body kind, checked against what the spec implies (a binary body is "tar"). */
  body?: BodyKind;
  /** For "ndjson": the element type when the spec's 2xx response has no schema (a model name or one of
   *  the helper types declared in operations.ts). */
  item?: string;
}

const e = (
  group: DockerGroup,
  name: string,
  response: ResponseKind = "json",
  extra: Partial<TableEntry> = {},
) => ({ group, name, response, ...extra }) satisfies TableEntry;

export const dockerTable: Readonly<Record<string, TableEntry>> = {
  // containers
  ContainerList: e("containers", "list"),
  ContainerCreate: e("containers", "create", "json", { body: "json" }),
  ContainerInspect: e("containers", "inspect"),
  ContainerTop: e("containers", "top"),
  ContainerLogs: e("containers", "logs", "stream"),
  ContainerChanges: e("containers", "changes"),
  ContainerExport: e("containers", "export", "tar"),
  ContainerStats: e("containers", "stats", "ndjson"),
  ContainerResize: e("containers", "resize"),
  ContainerStart: e("containers", "start"),
  ContainerStop: e("containers", "stop"),
  ContainerRestart: e("containers", "restart"),
  ContainerKill: e("containers", "kill"),
  ContainerUpdate: e("containers", "update", "json", { body: "json" }),
  ContainerRename: e("containers", "rename"),
  ContainerPause: e("containers", "pause"),
  ContainerUnpause: e("containers", "unpause"),
  ContainerAttach: e("containers", "attach", "upgrade"),
  ContainerAttachWebsocket: e("containers", "attachWebsocket", "upgrade"),
  ContainerWait: e("containers", "wait"),
  ContainerDelete: e("containers", "remove"),
  // HEAD: the answer is the X-Docker-Container-Path-Stat header.
  ContainerArchiveInfo: e("containers", "archiveInfo", "empty"),
  ContainerArchive: e("containers", "getArchive", "tar"),
  PutContainerArchive: e("containers", "putArchive", "json", { body: "tar" }),
  ContainerPrune: e("containers", "prune"),
  // images
  ImageList: e("images", "list"),
  ImageBuild: e("images", "build", "ndjson", { body: "tar", item: "BuildInfo" }),
  BuildPrune: e("images", "pruneBuildCache"),
  // Pull (fromImage) and import (fromSrc, with the image tarball as the body).
  ImageCreate: e("images", "pull", "ndjson", { body: "tar", item: "CreateImageInfo" }),
  ImageInspect: e("images", "inspect"),
  ImageHistory: e("images", "history"),
  ImagePush: e("images", "push", "ndjson", { item: "PushImageInfo" }),
  ImageTag: e("images", "tag"),
  ImageDelete: e("images", "remove"),
  ImageSearch: e("images", "search"),
  ImagePrune: e("images", "prune"),
  ImageCommit: e("images", "commit", "json", { body: "json" }),
  ImageGet: e("images", "save", "tar"),
  ImageGetAll: e("images", "saveAll", "tar"),
  ImageLoad: e("images", "load", "ndjson", { body: "tar", item: "ProgressMessage" }),
  // exec
  ContainerExec: e("exec", "create", "json", { body: "json" }),
  ExecStart: e("exec", "start", "stream", { body: "json" }),
  ExecResize: e("exec", "resize"),
  ExecInspect: e("exec", "inspect"),
  // system
  SystemAuth: e("system", "auth", "json", { body: "json" }),
  SystemInfo: e("system", "info"),
  SystemVersion: e("system", "version"),
  SystemPing: e("system", "ping", "text"),
  SystemPingHead: e("system", "pingHead", "empty"),
  SystemEvents: e("system", "events", "ndjson"),
  SystemDataUsage: e("system", "dataUsage"),
  // volumes
  VolumeList: e("volumes", "list"),
  VolumeCreate: e("volumes", "create", "json", { body: "json" }),
  VolumeInspect: e("volumes", "inspect"),
  VolumeUpdate: e("volumes", "update", "json", { body: "json" }),
  VolumeDelete: e("volumes", "remove"),
  VolumePrune: e("volumes", "prune"),
  // networks
  NetworkList: e("networks", "list"),
  NetworkInspect: e("networks", "inspect"),
  NetworkDelete: e("networks", "remove"),
  NetworkCreate: e("networks", "create", "json", { body: "json" }),
  NetworkConnect: e("networks", "connect", "json", { body: "json" }),
  NetworkDisconnect: e("networks", "disconnect", "json", { body: "json" }),
  NetworkPrune: e("networks", "prune"),
  // plugins
  PluginList: e("plugins", "list"),
  GetPluginPrivileges: e("plugins", "privileges"),
  PluginPull: e("plugins", "pull", "ndjson", { body: "json", item: "ProgressMessage" }),
  PluginInspect: e("plugins", "inspect"),
  PluginDelete: e("plugins", "remove"),
  PluginEnable: e("plugins", "enable"),
  PluginDisable: e("plugins", "disable"),
  PluginUpgrade: e("plugins", "upgrade", "ndjson", { body: "json", item: "ProgressMessage" }),
  PluginCreate: e("plugins", "create", "json", { body: "tar" }),
  // The daemon streams push progress (and reports failures inside the stream once it has started),
  // although the spec documents no body.
  PluginPush: e("plugins", "push", "ndjson", { item: "ProgressMessage" }),
  PluginSet: e("plugins", "set", "json", { body: "json" }),
  // nodes
  NodeList: e("nodes", "list"),
  NodeInspect: e("nodes", "inspect"),
  NodeDelete: e("nodes", "remove"),
  NodeUpdate: e("nodes", "update", "json", { body: "json" }),
  // swarm
  SwarmInspect: e("swarm", "inspect"),
  SwarmInit: e("swarm", "init", "json", { body: "json" }),
  SwarmJoin: e("swarm", "join", "json", { body: "json" }),
  SwarmLeave: e("swarm", "leave"),
  SwarmUpdate: e("swarm", "update", "json", { body: "json" }),
  SwarmUnlockkey: e("swarm", "unlockKey"),
  SwarmUnlock: e("swarm", "unlock", "json", { body: "json" }),
  // services
  ServiceList: e("services", "list"),
  ServiceCreate: e("services", "create", "json", { body: "json" }),
  ServiceInspect: e("services", "inspect"),
  ServiceDelete: e("services", "remove"),
  ServiceUpdate: e("services", "update", "json", { body: "json" }),
  ServiceLogs: e("services", "logs", "stream"),
  // tasks
  TaskList: e("tasks", "list"),
  TaskInspect: e("tasks", "inspect"),
  TaskLogs: e("tasks", "logs", "stream"),
  // secrets
  SecretList: e("secrets", "list"),
  SecretCreate: e("secrets", "create", "json", { body: "json" }),
  SecretInspect: e("secrets", "inspect"),
  SecretDelete: e("secrets", "remove"),
  SecretUpdate: e("secrets", "update", "json", { body: "json" }),
  // configs
  ConfigList: e("configs", "list"),
  ConfigCreate: e("configs", "create", "json", { body: "json" }),
  ConfigInspect: e("configs", "inspect"),
  ConfigDelete: e("configs", "remove"),
  ConfigUpdate: e("configs", "update", "json", { body: "json" }),
  // distribution
  DistributionInspect: e("distribution", "inspect"),
  // session (h2c upgrade for BuildKit)
  Session: e("session", "start", "upgrade"),
};

/** A spec operation read another way: the request of `of`, its answer received as `response`. */
export interface VariantEntry extends TableEntry {
  /** The spec's operation whose request (parameters, body) this sends. */
  of: string;
  /** What the method does, before the spec's summary of `of`. */
  summary: string;
}

/**
 * Second readings of spec operations, each a method and a row of its own: the key names the row (and its
 * result type), the parameters are those of `of`.
 */
export const dockerVariants: Readonly<Record<string, VariantEntry>> = {
  // Exec with stdin: the same start, asked to upgrade the connection (`Upgrade: tcp`), so stdin can be
  // written and half-closed while the output is read.
  ExecStartUpgraded: {
    of: "ExecStart",
    summary:
      "Start an exec instance over an upgraded connection, to write its stdin while reading its output.",
    ...e("exec", "startUpgraded", "upgrade", { body: "json" }),
  },
};

/** Types of the query parameters sent as JSON, by wire name. A query parameter the spec describes as
 *  JSON-encoded but that is missing here stops the generator. */
const jsonQueryTypes: Readonly<Record<string, string>> = {
  filters: "Filters",
  buildargs: "Record<string, string>",
  labels: "Record<string, string>",
  cachefrom: "string[]",
  platform: "OCIPlatform",
};

/** Headers sent as base64url(JSON), by wire name (lower case). */
const base64JsonHeaders: Readonly<Record<string, string>> = {
  "x-registry-auth": "RegistryAuth",
  "x-registry-config": "Record<string, RegistryAuth>",
};

/** Helper types declared in operations.ts (before the operations), with the models they use. */
const helperTypes: ReadonlyArray<{ name: string; uses: string[]; text: string }> = [
  {
    name: "Filters",
    uses: [],
    text: [
      '/** The `filters` query parameter: `{ status: ["running"], label: ["a=b"] }` (the daemon also accepts',
      ' *  the older `{ label: { "a=b": true } }` form). Sent as JSON. */',
      "export type Filters = Record<string, string[] | Record<string, boolean>>;",
    ].join("\n"),
  },
  {
    name: "RegistryAuth",
    uses: ["AuthConfig"],
    text: [
      "/** Credentials for X-Registry-Auth / X-Registry-Config (sent as base64url JSON): a username and",
      " *  password, or an identity token from `system.auth`. */",
      "export type RegistryAuth = AuthConfig & {",
      "  /** An identity token the registry issued (from `system.auth`), used instead of a password. */",
      "  identitytoken?: string;",
      "  /** A bearer token for the registry, sent as is. */",
      "  registrytoken?: string;",
      "};",
    ].join("\n"),
  },
  {
    name: "ProgressMessage",
    uses: ["ErrorDetail", "ProgressDetail"],
    text: [
      "/** One line of a progress stream (image load, plugin pull/upgrade/push) that the spec gives no model for. */",
      "export interface ProgressMessage {",
      "  /** What the line is about (a layer digest or a plugin name), when it is about one thing. */",
      "  id?: string;",
      "  /** The step, as the daemon words it (`Downloading`, `Pull complete`). */",
      "  status?: string;",
      "  /** A progress bar the daemon drew as text. */",
      "  progress?: string;",
      "  /** Bytes done and total, when the step has them. */",
      "  progressDetail?: ProgressDetail;",
      "  /** Plain output the daemon streams (for example a build's or a load's log lines). */",
      "  stream?: string;",
      "  /** Operation-specific data (for example the loaded image's id). */",
      "  aux?: unknown;",
      "  /** Set when the operation failed; the client turns it into an error. */",
      "  error?: string;",
      "  /** The error's code and message, when the operation failed. */",
      "  errorDetail?: ErrorDetail;",
      "}",
    ].join("\n"),
  },
];

// ---------------------------------------------------------------------------------------------------
// The spec.

export interface Schema {
  type?: string;
  format?: string;
  title?: string;
  description?: string;
  $ref?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  items?: Schema;
  allOf?: Schema[];
  enum?: unknown[];
  default?: unknown;
  "x-nullable"?: boolean;
}

export interface SwaggerParam {
  name: string;
  in: "path" | "query" | "header" | "body" | "formData";
  description?: string;
  required?: boolean;
  type?: string;
  format?: string;
  enum?: unknown[];
  items?: Schema;
  default?: unknown;
  schema?: Schema;
  collectionFormat?: string;
}

export interface SwaggerOperation {
  operationId: string;
  summary?: string;
  description?: string;
  consumes?: string[];
  produces?: string[];
  parameters?: SwaggerParam[];
  responses: Record<string, { description?: string; schema?: Schema }>;
}

export interface Swagger {
  definitions: Record<string, Schema>;
  paths: Record<string, Record<string, SwaggerOperation | SwaggerParam[]>>;
}

export interface SpecOperation {
  id: string;
  method: "GET" | "POST" | "PUT" | "DELETE" | "HEAD";
  path: string;
  op: SwaggerOperation;
  params: SwaggerParam[];
}

const methods = ["get", "post", "put", "delete", "head"] as const;

/** Some older Engine API specs (v1.41) carry double-quoted scalars whose continuation lines are not
 *  indented past their key, which YAML 1.2 parsers reject. Indent those lines and parse again. */
function repairQuotedScalars(text: string): string {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?[\w$.-]+: "(.*)$/.exec(lines[i] ?? "");
    if (!m || (m[2] ?? "").replace(/\\./g, "").includes('"')) continue;
    const indent = (m[1] ?? "").length;
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j] ?? "";
      const own = line.length - line.trimStart().length;
      if (line.trim() !== "" && own <= indent) lines[j] = " ".repeat(indent + 2) + line.trimStart();
      if (line.replace(/\\./g, "").includes('"')) {
        i = j;
        break;
      }
    }
  }
  return lines.join("\n");
}

export function dockerSpecPath(version: string): string {
  return join(specsDir(), "docker", version, "swagger.yaml");
}

export function loadDockerSpec(version: string = dockerSpecVersion): Swagger {
  const text = readFileSync(dockerSpecPath(version), "utf8");
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    doc = parse(repairQuotedScalars(text));
  }
  const spec = doc as Partial<Swagger> | null;
  if (!spec || typeof spec.paths !== "object" || typeof spec.definitions !== "object") {
    throw new Error(`docker codegen: ${dockerSpecPath(version)} has no paths/definitions`);
  }
  return spec as Swagger;
}

/** Every operation in spec order, path-level parameters merged into the operation's own. */
export function specOperations(spec: Swagger): SpecOperation[] {
  const out: SpecOperation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    const shared = (item.parameters ?? []) as SwaggerParam[];
    for (const [key, value] of Object.entries(item)) {
      if (key === "parameters") continue;
      const method = methods.find((m) => m === key);
      if (!method) throw new Error(`docker codegen: unsupported method ${key} on ${path}`);
      const op = value as SwaggerOperation;
      if (!op.operationId) throw new Error(`docker codegen: ${key.toUpperCase()} ${path} has no operationId`);
      const own = op.parameters ?? [];
      const params = [...shared.filter((p) => !own.some((o) => o.name === p.name && o.in === p.in)), ...own];
      for (const p of params) {
        if ("$ref" in p)
          throw new Error(`docker codegen: ${op.operationId}: parameter $ref is not supported`);
      }
      out.push({
        id: op.operationId,
        method: method.toUpperCase() as SpecOperation["method"],
        path,
        op,
        params,
      });
    }
  }
  return out;
}

/** Throws unless the table names exactly the spec's operations, and each variant one of them. */
export function checkTable(
  ops: readonly SpecOperation[],
  table: Readonly<Record<string, TableEntry>>,
  variants: Readonly<Record<string, VariantEntry>> = {},
): void {
  const ids = new Set(ops.map((o) => o.id));
  const missing = [...ids].filter((id) => !(id in table));
  const extra = Object.keys(table).filter((id) => !ids.has(id));
  const problems: string[] = [];
  if (missing.length) problems.push(`operations missing from the table: ${missing.join(", ")}`);
  if (extra.length) problems.push(`table entries the spec lacks: ${extra.join(", ")}`);
  if (ids.size !== ops.length) problems.push("the spec repeats an operationId");
  for (const [key, variant] of Object.entries(variants)) {
    if (ids.has(key)) problems.push(`variant ${key} has the name of a spec operation`);
    if (!ids.has(variant.of)) problems.push(`variant ${key} reads ${variant.of}, which the spec lacks`);
  }
  const seen = new Map<string, string>();
  for (const [id, entry] of [...Object.entries(table), ...Object.entries(variants)]) {
    const key = `${entry.group}.${entry.name}`;
    const other = seen.get(key);
    if (other) problems.push(`${id} and ${other} are both ${key}`);
    seen.set(key, id);
    if (!isIdentifier(entry.name)) problems.push(`${id}: method name ${entry.name} is not an identifier`);
  }
  if (problems.length) {
    throw new Error(
      `docker codegen: the operation table (scripts/codegen/docker.ts) is out of date:\n  ${problems.join("\n  ")}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Names and comments.

function isIdentifier(name: string): boolean {
  return /^[A-Za-z_$][\w$]*$/.test(name);
}

function propKey(name: string): string {
  return isIdentifier(name) ? name : JSON.stringify(name);
}

function camel(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const out = parts
    .map((p, i) =>
      i === 0 ? p.charAt(0).toLowerCase() + p.slice(1) : p.charAt(0).toUpperCase() + p.slice(1),
    )
    .join("");
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

function typeName(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const out = parts.map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
  if (!out) throw new Error(`docker codegen: cannot make a type name from ${JSON.stringify(name)}`);
  return /^[0-9]/.test(out) ? `T${out}` : out;
}

const deprecationPrefix = /^(?:>\s*)?(?:\*\*)?deprecated(?:\*\*)?\s*:\s*(?:\*\*)?\s*/i;

/** The JSDoc lines for a description: its first paragraph, plus `@deprecated` when a paragraph says so. */
function docText(description: string | undefined, tags: string[] = []): string[] {
  const paragraphs = (description ?? "")
    .replace(/\r\n/g, "\n")
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter(Boolean);
  const lines: string[] = [];
  const first = paragraphs[0];
  if (first !== undefined && !deprecationPrefix.test(first)) {
    lines.push(...first.split("\n"));
    // "The mount type:" is followed by the list it introduces.
    for (let i = 1; i < paragraphs.length && (lines[lines.length - 1] ?? "").endsWith(":"); i++) {
      const next = paragraphs[i] ?? "";
      if (deprecationPrefix.test(next)) break;
      lines.push("", ...next.split("\n"));
    }
  }
  const deprecated = paragraphs.find((p) => deprecationPrefix.test(p));
  if (deprecated !== undefined) {
    const text = deprecated
      .split("\n")
      .map((l) => l.replace(/^\s*>\s?/, ""))
      .join("\n")
      .replace(deprecationPrefix, "");
    const [head = "", ...rest] = text.split("\n");
    lines.push(`@deprecated ${head}`.trimEnd(), ...rest);
  }
  lines.push(...tags);
  let fenced = false;
  return lines
    .flatMap((l) => {
      if (l.trimStart().startsWith("```")) fenced = !fenced;
      return fenced ? [l] : wrapLine(l);
    })
    .map((l) => l.trimEnd().replace(/\*\//g, "*\\/"))
    .map((l) => (l.startsWith("@") && !/^@(deprecated|default|remarks) /.test(l) ? `\\${l}` : l));
}

const docWidth = 100;

/** Splits a long comment line at spaces, keeping a list item's indentation on its continuation lines. */
function wrapLine(line: string): string[] {
  if (line.length <= docWidth) return [line];
  const lead = /^(\s*(?:[-*] |\d+\. )?)/.exec(line)?.[1] ?? "";
  const cont = " ".repeat(lead.length);
  const out: string[] = [];
  let current = lead;
  for (const word of line.slice(lead.length).split(" ").filter(Boolean)) {
    if (current.trim() !== "" && current.length + 1 + word.length > docWidth) {
      out.push(current);
      current = cont + word;
    } else {
      current = current.trim() === "" ? current + word : `${current} ${word}`;
    }
  }
  out.push(current);
  return out;
}

function jsdoc(lines: string[], indent: string): string {
  if (lines.length === 0) return "";
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)).join("\n")}\n${indent} */\n`;
}

// ---------------------------------------------------------------------------------------------------
// Schemas to TypeScript.

interface RenderContext {
  /** Model names referenced (for imports). */
  refs: Set<string>;
  /** Names of the definitions, by swagger name. */
  definitionNames: ReadonlyMap<string, string>;
  /** Definitions marked `x-nullable: true`: a property referring to one may be null. */
  nullable: ReadonlySet<string>;
  /** Turns a titled inline object schema into a named type (operations.ts); absent in models.ts. */
  hoist?: (title: string, schema: Schema) => string | undefined;
}

/** Whether a type needs parentheses before `[]` or inside an intersection. */
function hasTopLevelOperator(t: string): boolean {
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charAt(i);
    if (c === "{" || c === "(" || c === "<" || c === "[") depth++;
    else if (c === "}" || c === ")" || c === ">" || c === "]") depth--;
    else if (depth === 0 && (c === "|" || c === "&")) return true;
    else if (c === '"') {
      for (i++; i < t.length && t.charAt(i) !== '"'; i++) if (t.charAt(i) === "\\") i++;
    }
  }
  return false;
}

const wrap = (t: string) => (hasTopLevelOperator(t) ? `(${t})` : t);

function renderType(s: Schema, ctx: RenderContext, indent: string): string {
  const t = renderBase(s, ctx, indent);
  return s["x-nullable"] === true && t !== "unknown" ? `${t} | null` : t;
}

function isObjectLike(s: Schema): boolean {
  return (
    s.type === "object" ||
    (s.type === undefined && (s.properties !== undefined || s.additionalProperties !== undefined))
  );
}

function renderBase(s: Schema, ctx: RenderContext, indent: string): string {
  if (s.$ref !== undefined) {
    const m = /^#\/definitions\/(.+)$/.exec(s.$ref);
    const name = m?.[1] !== undefined ? ctx.definitionNames.get(m[1]) : undefined;
    if (name === undefined) throw new Error(`docker codegen: unresolved $ref ${s.$ref}`);
    ctx.refs.add(name);
    return name;
  }
  if (s.allOf !== undefined) {
    return s.allOf.map((part) => wrap(renderType(part, ctx, indent))).join(" & ");
  }
  if (s.enum !== undefined) {
    if (s.type === "string" || (s.type === undefined && s.enum.every((v) => typeof v === "string"))) {
      return [...s.enum.map((v) => JSON.stringify(String(v))), "(string & {})"].join(" | ");
    }
    if (s.type === "integer" || s.type === "number") {
      return [...s.enum.map((v) => String(Number(v))), "(number & {})"].join(" | ");
    }
    if (
      s.type === "object" &&
      s.enum.every((v) => v !== null && typeof v === "object" && Object.keys(v).length === 0)
    ) {
      return "Record<string, never>";
    }
    throw new Error(`docker codegen: unsupported enum ${JSON.stringify(s.enum)} of type ${s.type}`);
  }
  if (s.type === "array") {
    return s.items ? `${wrap(renderType(s.items, ctx, indent))}[]` : "unknown[]";
  }
  if (isObjectLike(s)) {
    if (s.title !== undefined && ctx.hoist) {
      const name = ctx.hoist(s.title, s);
      if (name !== undefined) return name;
    }
    return renderObject(s, ctx, indent);
  }
  switch (s.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case undefined:
      return "unknown";
    default:
      throw new Error(`docker codegen: unsupported schema type ${s.type}`);
  }
}

function additionalType(s: Schema, ctx: RenderContext, indent: string): string | undefined {
  const ap = s.additionalProperties;
  if (ap === undefined || ap === false) return undefined;
  if (ap === true || Object.keys(ap).length === 0) return "unknown";
  return renderType(ap, ctx, indent);
}

/** Where the members being rendered sit (`Mount.BindOptions`), for the comment of an undescribed field. */
const owners: string[] = [];

/** The JSDoc lines for a description, or the given sentence where the spec has none. */
function docOr(description: string | undefined, fallback: string, tags: string[] = []): string[] {
  const lines = docText(description, tags);
  return lines.some((l) => l !== "" && !l.startsWith("@")) ? lines : [fallback, ...lines];
}

/** The members of an object schema, one per line (with their comments), at `indent`. */
function objectMembers(s: Schema, ctx: RenderContext, indent: string): string {
  const required = new Set(s.required ?? []);
  let out = "";
  const owner = owners.length ? `\`${owners.join(".")}\`` : "this object";
  for (const [name, prop] of Object.entries(s.properties ?? {})) {
    out += jsdoc(
      docOr(
        prop.description ?? prop.title,
        `The \`${name}\` field of ${owner} (the Engine API spec does not describe it).`,
      ),
      indent,
    );
    owners.push(name);
    let type: string;
    try {
      type = renderType(prop, ctx, indent);
    } finally {
      owners.pop();
    }
    // go-swagger makes a reference to a nullable definition a pointer; only properties are affected
    // (array items and map values of such types are never null in practice).
    const target = /^#\/definitions\/(.+)$/.exec(prop.$ref ?? "")?.[1];
    if (target !== undefined && ctx.nullable.has(target) && prop["x-nullable"] === undefined)
      type += " | null";
    out += `${indent}${propKey(name)}${required.has(name) ? "" : "?"}: ${type};\n`;
  }
  if (
    s.properties !== undefined &&
    s.additionalProperties !== undefined &&
    s.additionalProperties !== false
  ) {
    // Named properties and arbitrary others: the index signature must admit both.
    additionalType(s, ctx, indent);
    out += `${indent}[key: string]: unknown;\n`;
  }
  return out;
}

function renderObject(s: Schema, ctx: RenderContext, indent: string): string {
  if (s.properties === undefined || Object.keys(s.properties).length === 0) {
    return `Record<string, ${additionalType(s, ctx, indent) ?? "unknown"}>`;
  }
  return `{\n${objectMembers(s, ctx, `${indent}  `)}${indent}}`;
}

/** A top-level declaration: an interface for a plain object schema, a type alias otherwise. */
function declaration(name: string, schema: Schema, ctx: RenderContext, doc: string[]): string {
  // The declaration itself is never nullable: references to it are (see objectMembers).
  const { "x-nullable": _nullable, ...s } = schema;
  const isInterface =
    isObjectLike(s) &&
    s.allOf === undefined &&
    s.enum === undefined &&
    s.properties !== undefined &&
    Object.keys(s.properties).length > 0;
  const head = jsdoc(
    doc.some((l) => l !== "" && !l.startsWith("@"))
      ? doc
      : [`The Engine API's \`${name}\` schema (the spec does not describe it).`, ...doc],
    "",
  );
  // A hoisted inline schema is declared while its user's members are rendered: it starts a path of its own.
  const saved = owners.splice(0, owners.length, name);
  try {
    return declarationBody(name, s, ctx, head, isInterface);
  } finally {
    owners.splice(0, owners.length, ...saved);
  }
}

function declarationBody(
  name: string,
  s: Schema,
  ctx: RenderContext,
  head: string,
  isInterface: boolean,
): string {
  if (isInterface) return `${head}export interface ${name} {\n${objectMembers(s, ctx, "  ")}}\n`;
  // A title on the schema itself must not hoist it again.
  const { title: _title, ...rest } = s;
  return `${head}export type ${name} = ${renderType(rest, ctx, "")};\n`;
}

// ---------------------------------------------------------------------------------------------------
// Operations.

interface ParamOut {
  name: string;
  wire: string;
  in: "path" | "query" | "header";
  encoding: ParamEncoding;
  required: boolean;
  type: string;
  doc: string[];
}

function looksJsonEncoded(p: SwaggerParam): boolean {
  if (p.type === "array") return false;
  if (p.format === "json") return true;
  const d = (p.description ?? "").replace(/\s+/g, " ");
  return /\bJSON[- ]encoded\b|\bencoded as JSON\b|^JSON (array|map|object)\b|\bas a JSON (map|array|object)\b/i.test(
    d,
  );
}

function paramOut(op: SpecOperation, p: SwaggerParam, ctx: RenderContext): ParamOut {
  if (p.in !== "path" && p.in !== "query" && p.in !== "header") {
    throw new Error(`docker codegen: ${op.id}: unsupported parameter location ${p.in} (${p.name})`);
  }
  let encoding: ParamEncoding = "plain";
  let type: string;
  const tags: string[] = [];
  if (p.in === "header" && base64JsonHeaders[p.name.toLowerCase()] !== undefined) {
    encoding = "base64json";
    type = base64JsonHeaders[p.name.toLowerCase()] ?? "never";
  } else if (p.in === "query" && looksJsonEncoded(p)) {
    const t = jsonQueryTypes[p.name];
    if (t === undefined) {
      throw new Error(
        `docker codegen: ${op.id}: query parameter ${p.name} is JSON-encoded; add its type to jsonQueryTypes`,
      );
    }
    encoding = "json";
    type = t;
  } else {
    if (p.in === "header" && /^x-registry-/i.test(p.name)) {
      throw new Error(
        `docker codegen: ${op.id}: header ${p.name} looks like registry auth; add it to base64JsonHeaders`,
      );
    }
    const shape: Schema = {};
    if (p.type !== undefined) shape.type = p.type;
    if (p.format !== undefined) shape.format = p.format;
    if (p.enum !== undefined) shape.enum = p.enum;
    if (p.items !== undefined) shape.items = p.items;
    type = renderType(shape, ctx, "  ");
  }
  const models = new Set(ctx.definitionNames.values());
  for (const t of type.match(/\b[A-Z]\w*\b/g) ?? []) {
    if (models.has(t)) ctx.refs.add(t);
  }
  if (p.default !== undefined && p.default !== "") tags.push(`@default ${JSON.stringify(p.default)}`);
  const name =
    p.in === "header" ? camel(p.name.replace(/^x-/i, "")) : isIdentifier(p.name) ? p.name : camel(p.name);
  return {
    name,
    wire: p.name,
    in: p.in,
    encoding,
    required: p.required === true,
    type,
    doc: docOr(
      p.description,
      `The \`${p.name}\` ${p.in} parameter of ${op.id} (the spec does not describe it).`,
      tags,
    ),
  };
}

const tarTypes = ["application/x-tar", "application/octet-stream"];

function bodyOf(
  op: SpecOperation,
  ctx: RenderContext,
): { kind: BodyKind; contentType?: string; type?: string; required: boolean; doc: string[] } {
  const bodies = op.params.filter((p) => p.in === "body");
  if (bodies.length > 1) throw new Error(`docker codegen: ${op.id}: more than one body parameter`);
  const b = bodies[0];
  if (b === undefined) return { kind: "none", required: false, doc: [] };
  const schema = b.schema ?? {};
  const consumes = op.op.consumes ?? [];
  const doc = docOr(b.description, `The request body of ${op.id}.`);
  const binary =
    schema.type === "string" && (schema.format === "binary" || consumes.some((c) => tarTypes.includes(c)));
  if (binary) {
    const declared = op.params.find((p) => p.in === "header" && p.name.toLowerCase() === "content-type");
    const contentType = consumes.includes("application/x-tar")
      ? "application/x-tar"
      : typeof declared?.enum?.[0] === "string"
        ? declared.enum[0]
        : "application/octet-stream";
    return { kind: "tar", contentType, type: "TarBody", required: b.required === true, doc };
  }
  if (schema.type === "string" && !schema.format) {
    return { kind: "text", contentType: "text/plain", type: "string", required: b.required === true, doc };
  }
  return {
    kind: "json",
    contentType: "application/json",
    type: renderType(schema, ctx, "  "),
    required: b.required === true,
    doc,
  };
}

/** The 200 response schema, else 201, else any 2xx. */
function successSchema(op: SwaggerOperation): Schema | undefined {
  const codes = Object.keys(op.responses);
  const code = ["200", "201"].find((c) => c in op.responses) ?? codes.find((c) => /^2\d\d$/.test(c));
  return code === undefined ? undefined : op.responses[code]?.schema;
}

function resultType(
  op: SpecOperation,
  entry: TableEntry,
  ctx: RenderContext,
  helpers: ReadonlySet<string>,
): string {
  switch (entry.response) {
    case "json": {
      const s = successSchema(op.op);
      return s ? renderType(s, ctx, "") : "void";
    }
    case "ndjson": {
      if (entry.item !== undefined) {
        if (helpers.has(entry.item)) return entry.item;
        const name = ctx.definitionNames.get(entry.item);
        if (name === undefined)
          throw new Error(`docker codegen: ${op.id}: item type ${entry.item} is not a model`);
        ctx.refs.add(name);
        return name;
      }
      const s = successSchema(op.op);
      if (!s)
        throw new Error(
          `docker codegen: ${op.id}: ndjson without a response schema needs an item type in the table`,
        );
      return renderType(s, ctx, "");
    }
    case "text":
      return "string";
    default:
      return "void";
  }
}

// ---------------------------------------------------------------------------------------------------
// Files.

function operationKeys(spec: Swagger): Set<string> {
  return new Set(specOperations(spec).map((o) => `${o.method} ${o.path}`));
}

/** The generated files (name → text), without writing them. */
export function buildDockerFiles(): Map<string, string> {
  const spec = loadDockerSpec(dockerSpecVersion);
  const base = operationKeys(loadDockerSpec(dockerBaseVersion));
  const ops = specOperations(spec);
  checkTable(ops, dockerTable, dockerVariants);

  const head = header(source, "scripts/codegen/docker.ts");
  const definitionNames = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const name of Object.keys(spec.definitions)) {
    const ts = typeName(name);
    const clash = taken.get(ts);
    if (clash !== undefined)
      throw new Error(`docker codegen: definitions ${clash} and ${name} both become ${ts}`);
    taken.set(ts, name);
    definitionNames.set(name, ts);
  }

  // models.ts
  let models = `${head}// The Engine API's definitions. Enums stay open: the daemon may send values newer than this spec.\n`;
  const nullable = new Set(
    Object.entries(spec.definitions)
      .filter(([, s]) => s["x-nullable"] === true)
      .map(([name]) => name),
  );
  for (const [name, schema] of Object.entries(spec.definitions)) {
    const ctx: RenderContext = { refs: new Set(), definitionNames, nullable };
    models += `\n${declaration(definitionNames.get(name) ?? name, schema, ctx, docText(schema.description ?? schema.title))}`;
  }

  // operations.ts
  const modelRefs = new Set<string>();
  const reserved = new Set<string>([
    ...definitionNames.values(),
    "DockerApi",
    "OperationId",
    "OperationTypes",
    "operations",
  ]);
  for (const h of helperTypes) {
    if (reserved.has(h.name)) throw new Error(`docker codegen: helper type ${h.name} clashes with a model`);
    reserved.add(h.name);
    for (const u of h.uses) {
      if (!definitionNames.has(u))
        throw new Error(`docker codegen: helper ${h.name} uses missing model ${u}`);
      modelRefs.add(u);
    }
  }
  const helperNames = new Set(helperTypes.map((h) => h.name));
  const hoisted = new Map<string, { schema: string; text: string }>();
  const claim = (name: string, what: string) => {
    if (reserved.has(name))
      throw new Error(`docker codegen: ${what} ${name} clashes with another generated name`);
    reserved.add(name);
  };
  const ctx: RenderContext = {
    refs: modelRefs,
    definitionNames,
    nullable,
    hoist: (title, schema) => {
      if (!isIdentifier(title)) return undefined;
      const key = JSON.stringify(schema);
      const known = hoisted.get(title);
      if (known) {
        if (known.schema !== key)
          throw new Error(`docker codegen: two different inline schemas are titled ${title}`);
        return title;
      }
      claim(title, "inline schema title");
      hoisted.set(title, { schema: key, text: "" });
      const text = declaration(title, schema, ctx, docText(schema.description));
      hoisted.set(title, { schema: key, text });
      return title;
    },
  };

  const paramDecls: string[] = [];
  const tableLines: string[] = [];
  const typeLines: string[] = [];
  const byGroup = new Map<DockerGroup, string[]>(dockerGroups.map((g) => [g, []]));

  for (const op of ops) {
    const entry = dockerTable[op.id];
    if (!entry) throw new Error(`docker codegen: ${op.id} is not in the table`);
    const paramsName = `${typeName(op.id)}Params`;
    const resultName = `${typeName(op.id)}Result`;
    claim(paramsName, "params type");
    claim(resultName, "result type");

    const params = op.params.filter((p) => p.in !== "body").map((p) => paramOut(op, p, ctx));
    const body = bodyOf(op, ctx);
    if (entry.body !== undefined && entry.body !== body.kind) {
      throw new Error(
        `docker codegen: ${op.id}: the table says body "${entry.body}" but the spec implies "${body.kind}"`,
      );
    }
    if (entry.body === undefined && body.kind !== "none") {
      throw new Error(`docker codegen: ${op.id}: the spec has a ${body.kind} body; say so in the table`);
    }
    const names = new Set<string>();
    for (const n of [...params.map((p) => p.name), ...(body.kind === "none" ? [] : ["body"])]) {
      if (names.has(n)) throw new Error(`docker codegen: ${op.id}: two parameters are named ${n}`);
      names.add(n);
    }
    for (const m of op.path.matchAll(/\{([^}]+)\}/g)) {
      if (!params.some((p) => p.in === "path" && p.wire === m[1] && p.required)) {
        throw new Error(
          `docker codegen: ${op.id}: path placeholder {${m[1]}} has no required path parameter`,
        );
      }
    }

    // Params interface.
    const doc = jsdoc([`Parameters of ${entry.group}.${entry.name} (${op.method} ${op.path}).`], "");
    if (params.length === 0 && body.kind === "none") {
      paramDecls.push(`${doc}export type ${paramsName} = Record<string, never>;\n`);
    } else {
      let members = "";
      for (const p of params) {
        members += jsdoc(p.doc, "  ");
        members += `  ${propKey(p.name)}${p.required ? "" : "?"}: ${p.type};\n`;
      }
      if (body.kind !== "none") {
        members += jsdoc(body.doc, "  ");
        members += `  body${body.required ? "" : "?"}: ${body.type};\n`;
      }
      paramDecls.push(`${doc}export interface ${paramsName} {\n${members}}\n`);
    }
    const optional = params.every((p) => !p.required) && !body.required;
    const minVersion = base.has(`${op.method} ${op.path}`) ? undefined : afterBaseVersion;
    const paramRows = params.map(
      (p) =>
        `      { name: ${JSON.stringify(p.name)}, wire: ${JSON.stringify(p.wire)}, in: ${JSON.stringify(p.in)}, encoding: ${JSON.stringify(p.encoding)}, required: ${p.required} },\n`,
    );
    // The operation as the spec has it, then its variants: one row, result type and method each.
    const readings: [string, TableEntry, string | undefined][] = [
      [op.id, entry, op.op.summary ?? op.op.description],
      ...Object.entries(dockerVariants)
        .filter(([, v]) => v.of === op.id)
        .map(([key, v]): [string, TableEntry, string] => [key, v, v.summary]),
    ];
    for (const [key, reading, description] of readings) {
      if (reading.body !== entry.body) {
        throw new Error(`docker codegen: ${key}: its body is "${reading.body}", ${op.id}'s "${entry.body}"`);
      }
      const resultName = `${typeName(key)}Result`;
      if (key !== op.id) claim(resultName, "result type");
      const result = resultType(op, reading, ctx, helperNames);
      paramDecls.push(
        `${jsdoc([`What ${reading.group}.${reading.name} (${op.method} ${op.path}) resolves to.`], "")}export type ${resultName} = ${result};\n`,
      );

      // Table row.
      tableLines.push(
        `  ${key}: {\n` +
          `    id: ${JSON.stringify(op.id)},\n` +
          `    method: ${JSON.stringify(op.method)},\n` +
          `    path: ${JSON.stringify(op.path)},\n` +
          `    group: ${JSON.stringify(reading.group)},\n` +
          `    name: ${JSON.stringify(reading.name)},\n` +
          (paramRows.length ? `    params: [\n${paramRows.join("")}    ],\n` : "    params: [],\n") +
          `    body: ${JSON.stringify(body.kind)},\n` +
          (body.contentType !== undefined
            ? `    bodyContentType: ${JSON.stringify(body.contentType)},\n`
            : "") +
          `    response: ${JSON.stringify(reading.response)},\n` +
          (minVersion !== undefined ? `    minVersion: ${JSON.stringify(minVersion)},\n` : "") +
          "  },\n",
      );
      typeLines.push(
        `  /** ${reading.group}.${reading.name} (\`${op.method} ${op.path}\`). */\n` +
          `  ${key}: {\n` +
          `    /** Its parameters. */\n    params: ${paramsName};\n` +
          `    /** What it resolves to. */\n    result: ${resultName};\n` +
          `    /** How its answer is read. */\n    response: ${JSON.stringify(reading.response)};\n  };\n`,
      );

      // DockerApi method.
      const summary = docOr(description, `The ${op.id} operation.`, [
        "",
        `\`${op.method} ${op.path}\``,
        ...(minVersion !== undefined ? [`@remarks Requires Engine API ${minVersion} or later.`] : []),
      ]);
      byGroup
        .get(reading.group)
        ?.push(
          `${jsdoc(summary, "    ")}    ${reading.name}(params${optional ? "?" : ""}: ${paramsName}, options?: RequestOptions): ResponseFor<${JSON.stringify(reading.response)}, ${resultName}>;\n`,
        );
    }
  }

  const contract = ["OperationSpec", "RequestOptions", "ResponseFor", "TarBody"];
  const imports =
    `import type { ${contract.join(", ")} } from "../operation.js";\n` +
    `import type {\n${[...modelRefs]
      .sort()
      .map((n) => `  ${n},\n`)
      .join("")}} from "./models.js";\n`;
  let api = "/** The Engine API, grouped the way the client exposes it. */\nexport interface DockerApi {\n";
  for (const [group, methodsText] of byGroup) {
    if (methodsText.length === 0) continue;
    api += `  /** The ${group} operations of the Engine API. */\n  ${group}: {\n${methodsText.join("")}  };\n`;
  }
  api += "}\n";

  const operations = [
    head,
    imports,
    "// Helper types.\n",
    ...helperTypes.map((h) => `${h.text}\n`),
    ...(hoisted.size
      ? ["// Request and response types the spec declares inline (named by their titles).\n"]
      : []),
    ...[...hoisted.values()].map((h) => h.text),
    "// Parameters and results, one pair per operation.\n",
    ...paramDecls,
    "/**\n" +
      " * Every operation: how to call it and how its answer is read. The client builds its methods from it;\n" +
      " * the package's entry point does not export it (index.ts names what it exports).\n" +
      " * @internal\n" +
      " */\n" +
      `export const operations = {\n${tableLines.join("")}} as const satisfies Record<string, OperationSpec>;\n`,
    "/** The key of an operation in the table: the spec's operationId (e.g. `ContainerCreate`), or a\n" +
      " *  variant's name (e.g. `ExecStartUpgraded`, ExecStart read as an upgraded connection). */\n" +
      "export type OperationId = keyof OperationTypes;\n",
    "/** Params, result and response kind of every operation. */\n" +
      `export interface OperationTypes {\n${typeLines.join("")}}\n`,
    api,
  ].join("\n");

  // The entry point exports the operations' types by name; the table itself stays internal.
  const publicTypes = [
    ...helperTypes.map((h) => h.name),
    ...hoisted.keys(),
    ...ops.flatMap((op) => [`${typeName(op.id)}Params`, `${typeName(op.id)}Result`]),
    ...Object.keys(dockerVariants).map((key) => `${typeName(key)}Result`),
    "OperationId",
    "OperationTypes",
    "DockerApi",
  ];
  const declared = [...operations.matchAll(/^export (?:interface|type|const) (\w+)/gm)].map((m) => m[1]);
  const expected = [...publicTypes, "operations"];
  const unlisted = declared.filter((n) => n !== undefined && !expected.includes(n));
  const absent = expected.filter((n) => !declared.includes(n));
  if (unlisted.length || absent.length) {
    throw new Error(
      `docker codegen: index.ts and operations.ts disagree (not exported: ${unlisted.join(", ") || "none"}; ` +
        `not declared: ${absent.join(", ") || "none"})`,
    );
  }
  const index =
    `${head}export type * from "./models.js";\n` +
    `export type {\n${publicTypes.map((n) => `  ${n},\n`).join("")}} from "./operations.js";\n`;
  return new Map([
    ["index.ts", index],
    ["models.ts", models],
    ["operations.ts", operations],
  ]);
}

export function generateDocker(): void {
  writeTree(dockerOutDir, buildDockerFiles());
}
