// This host's own addresses, as a registry elsewhere must not reach them through us: a redirect or a token
// realm naming 127.0.0.1, ::1, 169.254.169.254 (cloud metadata) or 0.0.0.0 would have us send a blind GET
// to a service that trusts local callers. Loopback, link-local and unspecified addresses, IPv4-mapped
// forms included; names are checked by what they resolve to, when the connection is made.
import { lookup } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

const LOCAL = new BlockList();
LOCAL.addSubnet("127.0.0.0", 8, "ipv4");
LOCAL.addSubnet("169.254.0.0", 16, "ipv4");
// 0.0.0.0/8: "this network"; Linux connects 0.0.0.0 to the local host.
LOCAL.addSubnet("0.0.0.0", 8, "ipv4");
LOCAL.addAddress("::1", "ipv6");
LOCAL.addAddress("::", "ipv6");
LOCAL.addSubnet("fe80::", 10, "ipv6");

/** The error code the guarded lookup fails a connection with. */
export const LOCAL_ADDRESS_CODE = "BERTH_LOCAL_ADDRESS";

/** Loopback, link-local or unspecified (an IP literal; a name is never local here). */
export function isLocalAddress(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOCAL.check(address, family === 6 ? "ipv6" : "ipv4");
}

/** A host without port or IPv6 brackets: "[::1]:5000" → "::1", "myreg:5000" → "myreg", "::1" → "::1". */
export function bareHostname(host: string): string {
  if (isIP(host)) return host.toLowerCase();
  const h = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d*$/, "");
  return h.toLowerCase();
}

/** Names that always mean this host, whatever DNS says (RFC 6761). */
const isLocalName = (name: string) => name === "localhost" || name.endsWith(".localhost");

/** A local address the hostname is or resolves to, or undefined (a name that does not resolve is not). */
export async function localAddressOf(hostname: string): Promise<string | undefined> {
  const h = bareHostname(hostname);
  if (isIP(h)) return isLocalAddress(h) ? h : undefined;
  if (isLocalName(h)) return h;
  const addresses = await new Promise<{ address: string }[]>((resolve) =>
    lookup(h, { all: true }, (err, all) => resolve(err ? [] : all)),
  );
  return addresses.find((a) => isLocalAddress(a.address))?.address;
}

/** A DNS lookup for net.connect that fails when the name resolves to a local address: checked where the
 *  connection is made, so a name that resolves elsewhere when we look and here when undici connects
 *  (DNS rebinding) is still refused. */
export const refuseLocalLookup: LookupFunction = (hostname, options, callback) => {
  if (isLocalName(hostname.toLowerCase())) {
    callback(refusal(hostname, hostname), "", 0);
    return;
  }
  lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const local = addresses.find((a) => isLocalAddress(a.address));
    if (local) return callback(refusal(hostname, local.address), "", 0);
    if (options.all) return (callback as (e: null, a: typeof addresses) => void)(null, addresses);
    const first = addresses[0] as { address: string; family: number };
    callback(null, first.address, first.family);
  });
};

function refusal(hostname: string, address: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${hostname} resolves to ${address}`), {
    code: LOCAL_ADDRESS_CODE,
    address,
  });
}
