// The API reference (`npm run docs:api`, built in CI): every entry point of every publishable package's
// `exports` map, from the sources, into docs/api/ (git-ignored). Any warning fails the build, including a
// public symbol without a doc comment, a link that does not resolve, or a type the reference names but
// does not include.
import { OptionDefaults } from "typedoc";

/** @type {Partial<import("typedoc").TypeDocOptions>} */
export default {
  name: "berth",
  entryPoints: [
    "packages/runtime-core/src/index.ts",
    "packages/runtime-core/src/conformance.ts",
    "packages/grpc/src/index.ts",
    "packages/docker-client/src/index.ts",
    "packages/docker-client/src/provider.ts",
    "packages/containerd-client/src/index.ts",
    "packages/containerd-client/src/provider.ts",
    "packages/crio-client/src/index.ts",
    "packages/crio-client/src/provider.ts",
    "packages/berth/src/index.ts",
    "packages/berth/src/doctor.ts",
  ],
  entryPointStrategy: "resolve",
  // Maps each @berth/* import to its sources, so the reference needs no build and reads the comments there.
  tsconfig: "tsconfig.typedoc.json",
  out: "docs/api",
  readme: "none",
  excludePrivate: true,
  excludeInternal: true,
  // No git remote in a CI clone: source links point at the repository's main branch instead.
  disableGit: true,
  sourceLinkTemplate: "https://github.com/berth-sdk/berth/blob/main/{path}#L{line}",
  // The OCI schemas' generated types carry JSON Schema keywords as tags.
  blockTags: [...OptionDefaults.blockTags, "@minItems", "@maxItems"],
  // Node's own types (members a class inherits from a stream) link to Node's documentation.
  externalSymbolLinkMappings: { "@types/node": { "*": "https://nodejs.org/api/" } },
  // Without this, only the root package ("berth", private) would be checked for comments.
  packagesRequiringDocumentation: [
    "@berth/runtime-core",
    "@berth/grpc",
    "@berth/docker-client",
    "@berth/containerd-client",
    "@berth/crio-client",
    "berth-sdk",
  ],
  treatWarningsAsErrors: true,
  treatValidationWarningsAsErrors: true,
  validation: {
    notExported: true,
    invalidLink: true,
    notDocumented: true,
  },
};
