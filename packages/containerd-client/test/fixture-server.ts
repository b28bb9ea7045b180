// Small node:http servers standing in for registries, token services and redirect targets, closed after
// each test; and this machine's first non-loopback address, for "a registry that is not on this host".
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { afterEach } from "vitest";

/** This machine's first non-loopback IPv4 address (undefined when it has none). */
export const EXT = Object.values(networkInterfaces())
  .flat()
  .filter((i) => i && i.family === "IPv4" && !i.internal && !i.address.startsWith("169.254."))
  .map((i) => i?.address as string)[0];

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Fixture {
  /** host:port, as an image reference names it. */
  host: string;
  origin: string;
  /** The URLs asked for, in order. */
  requests: string[];
  /** Responses whose connection closed before they were finished (the client hung up). */
  cutOff: number;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

export async function serve(handler: Handler, address = "127.0.0.1"): Promise<Fixture> {
  const f: Fixture = { host: "", origin: "", requests: [], cutOff: 0 };
  const server = createServer((req, res) => {
    f.requests.push(req.url ?? "");
    res.on("close", () => {
      if (!res.writableFinished) f.cutOff++;
    });
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, address, r));
  f.host = `${address}:${(server.address() as AddressInfo).port}`;
  f.origin = `http://${f.host}`;
  return f;
}
