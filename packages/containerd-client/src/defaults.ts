// Where containerd is found when nothing says otherwise; apart from client.ts so the provider can name it
// without loading the gRPC client.
/** containerd's default socket. */
export const DEFAULT_CONTAINERD_ADDRESS = "/run/containerd/containerd.sock";
/** The namespace calls use when none is given (ctr's default too). */
export const DEFAULT_NAMESPACE = "default";
