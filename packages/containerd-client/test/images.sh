#!/usr/bin/env bash
# Build the extra test images from the harness's busybox OCI layout and push them to the plain registry:
#   whiteout:<tag>  busybox + layer adding /etc/secret, /data/keep and user app + layer deleting /etc/secret;
#                   config Env FOO=bar, WorkingDir /data, User app
#   big:<tag>       busybox + 3 MiB of random bytes (a blob no namespace has yet)
#   multi:<tag>     index: linux/amd64 → busybox, linux/arm64 → whiteout manifest
# Usage: images.sh BASE_LAYOUT REGISTRY TAG; prints the multi index's amd64 manifest digest.
set -euo pipefail
BASE=$1 REG=$2 TAG=$3
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
L=$W/layout
cp -r "$BASE" "$L"
umoci unpack --image "$L:latest" "$W/b" >/dev/null
R=$W/b/rootfs
mkdir -p "$R/data" && echo secret >"$R/etc/secret" && echo kept >"$R/data/keep"
echo 'app:x:1000:1001:app:/data:/bin/sh' >>"$R/etc/passwd"
echo 'app:x:1001:' >>"$R/etc/group"
umoci repack --image "$L:whiteout" "$W/b" >/dev/null
# repack builds on the image a bundle was unpacked from: unpack the new one before deleting
rm -rf "$W/b" && umoci unpack --image "$L:whiteout" "$W/b" >/dev/null
rm "$R/etc/secret"
umoci repack --image "$L:whiteout" "$W/b" >/dev/null
tar -tzf "$L/blobs/sha256/$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "whiteout") | .digest' "$L/index.json" | cut -d: -f2 | xargs -I{} jq -r '.layers[-1].digest' "$L/blobs/sha256/{}" | cut -d: -f2)" | grep -qx 'etc/.wh.secret' || { echo "no whiteout in the last layer" >&2; exit 1; }
umoci config --image "$L:whiteout" --config.env FOO=bar --config.workingdir /data --config.user app
rm -rf "$W/b"
umoci unpack --image "$L:latest" "$W/b" >/dev/null
head -c 3145728 /dev/urandom >"$W/b/rootfs/random.bin"
umoci repack --image "$L:big" "$W/b" >/dev/null
rm -rf "$W/b"

# the multi-platform index, written by hand into the layout
manifest() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)' "$L/index.json"; }
amd=$(manifest latest) arm=$(manifest whiteout)
idx=$(jq -cn --argjson a "$amd" --argjson b "$arm" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [($b | del(.annotations) | .platform = {os: "linux", architecture: "arm64", variant: "v8"}),
              ($a | del(.annotations) | .platform = {os: "linux", architecture: "amd64"})]}')
d=$(printf '%s' "$idx" | sha256sum | cut -d' ' -f1)
printf '%s' "$idx" >"$L/blobs/sha256/$d"
size=$(printf '%s' "$idx" | wc -c)
jq --arg d "sha256:$d" --argjson s "$size" '.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json",
  digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": "multi"}}]' "$L/index.json" >"$W/i.json"
mv "$W/i.json" "$L/index.json"

for t in whiteout big; do
  skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$L:$t" "docker://$REG/$t:$TAG"
done
skopeo --insecure-policy copy -q --all --preserve-digests --dest-tls-verify=false "oci:$L:multi" "docker://$REG/multi:$TAG"
echo "$amd" | jq -r .digest
