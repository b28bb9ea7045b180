export declare const repoRoot: string;
export declare const stateDir: string;
export declare const envFile: string;
export declare function readHarnessEnv(): Record<string, string> | undefined;
export declare function probe(
  env: Record<string, string>,
): Promise<{ docker: boolean; podman: boolean; containerd: boolean; registry: boolean }>;
export declare function ensureRuntimes(options?: { log?: (message: string) => void }): Promise<{
  env: Record<string, string>;
  started: boolean;
  stop: () => Promise<void>;
}>;
