#!/usr/bin/env bash
# Build an image of random-content layers (no namespace or registry has those blobs yet) and push it to a
# plain-HTTP registry. Usage: image.sh REF MIB...  (one gzip layer of MIB mebibytes of random bytes per
# argument), e.g. image.sh 127.0.0.1:5000/berth-bench:abc 17 17 17
set -euo pipefail
REF=$1
shift
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
umoci init --layout "$W/layout"
umoci new --image "$W/layout:img"
umoci config --image "$W/layout:img" --os linux --architecture amd64
i=0
for mib in "$@"; do
  i=$((i + 1))
  mkdir "$W/l$i"
  head -c "$((mib * 1048576))" /dev/urandom >"$W/l$i/layer$i.bin"
  tar -C "$W/l$i" -cf "$W/l$i.tar" "layer$i.bin"
  rm -rf "$W/l$i"
  umoci raw add-layer --image "$W/layout:img" "$W/l$i.tar"
  rm "$W/l$i.tar"
done
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$W/layout:img" "docker://$REF"
