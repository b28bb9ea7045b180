// An HTTP server on a unix socket in a temporary folder: the stand-in for a daemon in unit tests.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface UnixServer {
  /** unix:///tmp/.../daemon.sock */
  readonly host: string;
  close(): Promise<void>;
}

export async function serveUnix(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<UnixServer> {
  const root = await mkdtemp(join(tmpdir(), "berth-stand-in-"));
  const socket = join(root, "daemon.sock");
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    host: `unix://${socket}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(root, { recursive: true, force: true });
    },
  };
}
