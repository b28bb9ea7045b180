// Where containerd is found when nothing says otherwise; apart from client.ts so the provider can name it
// without loading the gRPC client.
export const DEFAULT_CONTAINERD_ADDRESS = "/run/containerd/containerd.sock";
export const DEFAULT_NAMESPACE = "default";
