// `npm run generate`: every generated tree from specs/ (or BERTH_SPECS_DIR).
//   containerd-client/src/generated: containerd protos (ts-proto) + OCI runtime/image spec types
//   crio-client/src/generated:       CRI runtime.v1 (ts-proto)
//   docker-client/src/generated:     Docker Engine API models and operation table
import { join } from "node:path";
import { generateDocker } from "./docker.ts";
import { generateOci } from "./oci.ts";
import { generateProtos } from "./protos.ts";
import { repoRoot, writeTree } from "./util.ts";

async function main(): Promise<void> {
  const { containerd, cri } = generateProtos();
  for (const [name, text] of await generateOci()) containerd.set(name, text);
  containerd.set(
    "index.ts",
    `${containerd.get("index.ts")}export * as ociRuntimeSpec from "./oci/runtime-spec.js";\nexport * as ociImageSpec from "./oci/image-spec.js";\n`,
  );
  writeTree(join(repoRoot, "packages/containerd-client/src/generated"), containerd);
  writeTree(join(repoRoot, "packages/crio-client/src/generated"), cri);
  generateDocker();
}

main().catch((err: Error) => {
  console.error(`berth generate: ${err.message}`);
  process.exit(1);
});
