// Host ports for CRI port mappings. The CRI's mappings publish nothing when host_port is 0 (the kubelet
// leaves picking one to the user), where Docker picks a free port: this does what Docker does.
import { createSocket } from "node:dgram";
import { type AddressInfo, createServer } from "node:net";
import { type PortMapping, ValidationError } from "@berth/runtime-core";

/**
 * Port mappings with a host port for each: the CRI's port mappings do not pick one (0 means "not
 * published"), so, like Docker, take a free one from the host's ephemeral range. The runtime is on this
 * host (its logs are read from here); nothing holds the port between this check and the pod's start.
 */
export async function hostPorts(ports: PortMapping[] | undefined): Promise<PortMapping[] | undefined> {
  if (!ports?.some((p) => !p.hostPort)) return ports;
  return Promise.all(
    ports.map(async (p) => {
      if (p.hostPort) return p;
      try {
        return { ...p, hostPort: await freePort(p.protocol ?? "tcp", p.hostIp) };
      } catch (err) {
        throw new ValidationError(
          `port ${p.containerPort}: no free ${p.protocol ?? "tcp"} port on ${p.hostIp || "this host"}: ${(err as Error).message}`,
          { operation: "create", backend: "cri", cause: err },
        );
      }
    }),
  );
}

export function freePort(protocol: "tcp" | "udp", hostIp: string | undefined): Promise<number> {
  const address = hostIp || "0.0.0.0";
  return new Promise((resolve, reject) => {
    if (protocol === "udp") {
      const socket = createSocket(address.includes(":") ? "udp6" : "udp4");
      socket.once("error", reject);
      socket.bind(0, address, () => {
        const { port } = socket.address();
        socket.close(() => resolve(port));
      });
      return;
    }
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
