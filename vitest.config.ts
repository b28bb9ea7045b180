import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against package sources, not dist, so a test never sees a stale build.
    alias: [
      { find: /^@berth\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
      { find: /^@berth\/([a-z-]+)\/([a-z-]+)$/, replacement: `${root}packages/$1/src/$2.ts` },
      { find: /^berth-sdk$/, replacement: `${root}packages/berth/src/index.ts` },
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts", "scripts/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: [
            "packages/*/test/**/*.int.test.ts",
            "examples/test/**/*.int.test.ts",
            "test/faults/**/*.int.test.ts",
            "test/proxy/**/*.int.test.ts",
            "test/load/**/*.int.test.ts",
            "test/fuzz/**/*.int.test.ts",
          ],
          globalSetup: ["./test/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
