// What the integration tests may expect of the daemon set they run on (scripts/runtimes/versions.sh).
// The harness's env file names the set (BERTH_RUNTIME_SET); the facts that differ between the sets are
// written here once, so a test says "the daemon's API version", not "1.41".

export type DaemonSet = "debian12" | "current";

export interface DaemonSetFacts {
  /** The Engine API version the Docker client negotiates with dockerd. */
  dockerApi: string;
  /** The Docker-compatible API version Podman reports. */
  podmanApi: string;
  /** dockerd's version. */
  docker: RegExp;
  /** Podman's version (libpod). */
  podman: RegExp;
  /** containerd's version (also the CRI's runtimeVersion). */
  containerd: RegExp;
  /** The first three octets of the CRI's pod network (the harness's CNI bridge). */
  criSubnet: string;
  /** containerd's CRI serves GetContainerEvents and RuntimeConfig (1.7+). */
  criEvents: boolean;
  /** `docker save` writes an OCI layout (index.json, blobs/) beside manifest.json (Docker 25+). */
  dockerSaveIsOci: boolean;
  /** containerd serves the Transfer and Streaming services (1.7+): it can pull an image itself. */
  containerdTransfer: boolean;
}

const FACTS: Record<DaemonSet, DaemonSetFacts> = {
  debian12: {
    dockerApi: "1.41",
    podmanApi: "1.41",
    docker: /^20\.10\./,
    podman: /^4\.3\./,
    containerd: /^v?1\.6\./,
    criSubnet: "10.88.77",
    criEvents: false,
    dockerSaveIsOci: false,
    containerdTransfer: false,
  },
  current: {
    dockerApi: "1.51",
    podmanApi: "1.41",
    docker: /^28\.5\./,
    podman: /^5\.4\./,
    containerd: /^v?2\.1\./,
    criSubnet: "10.88.78",
    criEvents: true,
    dockerSaveIsOci: true,
    containerdTransfer: true,
  },
};

export const DAEMON_SET: DaemonSet = process.env.BERTH_RUNTIME_SET === "current" ? "current" : "debian12";
export const daemonSet: DaemonSetFacts = FACTS[DAEMON_SET];
