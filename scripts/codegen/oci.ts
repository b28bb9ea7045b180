// OCI runtime-spec and image-spec types from their JSON schemas (json-schema-to-typescript). Each spec
// becomes one file with one root type per schema document; string enums are left open.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { compile, type JSONSchema } from "json-schema-to-typescript";
import { fillDocs } from "./doc-fill.ts";
import { header, specsDir } from "./util.ts";

type Node = Record<string, unknown>;

/** Open every string enum (runtimes report values newer than the schema) and drop URL ids. */
function prepare(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) prepare(n);
    return;
  }
  if (!node || typeof node !== "object") return;
  const o = node as Node;
  // image-spec documents carry URL ids, which would become the type names.
  if (typeof o.id === "string" && o.id.startsWith("http")) delete o.id;
  if (Array.isArray(o.enum) && o.enum.every((v) => typeof v === "string")) {
    o.tsType = `${(o.enum as string[]).map((v) => JSON.stringify(v)).join(" | ")} | (string & {})`;
    delete o.enum;
  }
  for (const v of Object.values(o)) prepare(v);
}

/** One schema whose properties point at each root document, so shared definitions are emitted once.
 *  Every document of the folder is read and prepared here and handed to the $ref resolver from memory,
 *  so referenced documents get the same treatment and the root documents keep their names. */
async function compileSpec(dir: string, title: string, roots: Record<string, string>): Promise<string> {
  const docs = new Map<string, Node>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const doc = JSON.parse(readFileSync(join(dir, file), "utf8")) as Node;
    prepare(doc);
    docs.set(file, doc);
  }
  const properties: Node = {};
  for (const [name, file] of Object.entries(roots)) {
    const doc = docs.get(file);
    if (!doc) throw new Error(`OCI schema ${join(dir, file)} is missing`);
    doc.title = name;
    properties[name] = { $ref: file };
  }
  const schema = { title, type: "object", properties, additionalProperties: false } as JSONSchema;
  return compile(schema, title, {
    cwd: dir,
    bannerComment: "",
    additionalProperties: false,
    declareExternallyReferenced: true,
    unreachableDefinitions: false,
    format: true,
    style: { printWidth: 110 },
    $refOptions: {
      resolve: {
        file: false,
        http: false,
        memory: {
          order: 1,
          canRead: true,
          read: (ref: { url: string }) => {
            const doc = docs.get(basename(ref.url));
            if (!doc) throw new Error(`OCI schema reference ${ref.url} is not in ${dir}`);
            return JSON.stringify(doc);
          },
        },
      },
    } as never,
  });
}

export async function generateOci(): Promise<Map<string, string>> {
  const specs = specsDir();
  const files = new Map<string, string>();
  const runtime = await compileSpec(join(specs, "oci/runtime-spec"), "OciRuntimeSpecDocuments", {
    Spec: "config-schema.json",
    State: "state-schema.json",
    Features: "features-schema.json",
  });
  files.set(
    "oci/runtime-spec.ts",
    header("OCI runtime-spec 1.2.1 JSON schemas, specs/oci/runtime-spec", "scripts/codegen/oci.ts") +
      fillDocs("runtime-spec.ts", runtime, { what: "the OCI runtime-spec schema", typeNoun: "schema type" }),
  );
  const image = await compileSpec(join(specs, "oci/image-spec"), "OciImageSpecDocuments", {
    ImageManifest: "image-manifest-schema.json",
    ImageIndex: "image-index-schema.json",
    ImageConfig: "config-schema.json",
    Descriptor: "content-descriptor.json",
    ImageLayout: "image-layout-schema.json",
  });
  files.set(
    "oci/image-spec.ts",
    header("OCI image-spec 1.1.1 JSON schemas, specs/oci/image-spec", "scripts/codegen/oci.ts") +
      fillDocs("image-spec.ts", image, { what: "the OCI image-spec schema", typeNoun: "schema type" }),
  );
  return files;
}
