# shellcheck shell=bash
# Podman 5 needs a newer libc than Debian 12's, so it runs from a Debian trixie root made with debootstrap
# and served from a chroot. Sourced by current.sh (build, configure, mount) and down.sh (unmount).
#
# The root holds binds of the host's /dev and /sys: it is deleted only by `down.sh --purge`, and only
# once nothing is mounted under it (an `rm -rf` while /dev is bound deletes the host's device nodes).

PM5_STAMP=$PM5_ROOT/.berth-root

pm5_build_root() {
  local want="$PODMAN_ROOT_SUITE $PODMAN_ROOT_PACKAGES"
  [ -f "$PM5_STAMP" ] && [ "$(<"$PM5_STAMP")" = "$want" ] && return 0
  [ -z "$(pm5_mounts)" ] || die "$PM5_ROOT has mounts; run down.sh before rebuilding it"
  log "building the Podman 5 root: debootstrap $PODMAN_ROOT_SUITE (about a minute, once)"
  rm -rf --one-file-system "$PM5_ROOT"
  mkdir -p "$PM5_ROOT"
  debootstrap --variant=minbase --include="$PODMAN_ROOT_PACKAGES" "$PODMAN_ROOT_SUITE" "$PM5_ROOT" \
    "$(debian_mirror)" >"$LOGS/debootstrap.log" 2>&1 || {
    tail -n 20 "$LOGS/debootstrap.log" >&2
    die "debootstrap of Debian $PODMAN_ROOT_SUITE failed (see $LOGS/debootstrap.log)"
  }
  local have
  have=$(chroot "$PM5_ROOT" dpkg-query -W -f='${Version}' podman)
  [ "$have" = "$CURRENT_PODMAN_VERSION" ] ||
    die "Debian $PODMAN_ROOT_SUITE now has podman $have, not $CURRENT_PODMAN_VERSION: update scripts/runtimes/versions.sh"
  echo "$want" >"$PM5_STAMP"
  log "Podman root built: podman $have"
}

# Written on every up: runc (this host's hybrid cgroups defeat trixie's crun), cgroupfs, the ulimits this
# machine can grant, netavark with iptables (Debian 12's tools see the rules), our subnets, our registries.
pm5_configure() {
  local etc=$PM5_ROOT/etc/containers nofile nproc
  nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  mkdir -p "$etc"
  cat >"$etc/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
infra_image = "$PAUSE_IMAGE"

[network]
firewall_driver = "iptables"
default_subnet = "$PM5_SUBNET"
default_subnet_pools = [{ base = "$PM5_POOL", size = 24 }]
EOF
  {
    echo 'unqualified-search-registries = []'
    for port in "${REGISTRY_PORTS[@]}"; do
      for host in "127.0.0.1:$port" "localhost:$port"; do
        printf '\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$host"
      done
    done
  } >"$etc/registries.conf"
}

# containers/storage remounts "/" private, which fails unless the chroot's root is a mount point: bind
# the root onto itself first. /sys and /dev are rslave so unmounting them never reaches the host's.
pm5_mount() {
  local r=$PM5_ROOT
  mountpoint -q "$r" || mount --bind "$r" "$r"
  mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"
  if ! mountpoint -q "$r/sys"; then mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys"; fi
  if ! mountpoint -q "$r/dev"; then mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev"; fi
  mountpoint -q "$r/run" || mount -t tmpfs -o mode=0755 tmpfs "$r/run"
  mkdir -p "$r/run/podman"
}

# Mount points at or below the root, deepest first.
pm5_mounts() {
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "$m")
    if [[ $m == "$PM5_ROOT" || $m == "$PM5_ROOT/"* ]]; then echo "$m"; fi
  done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2- | uniq
}

# Kill what still runs inside the root (exec sessions keep a conmon for 300 s), then unmount everything
# under it, deepest first. Returns non-zero if anything stays mounted.
pm5_unmount() {
  local pid m
  for _ in 1 2 3; do
    pid=$(procs_rooted_in_state | awk '{print $1}')
    [ -n "$pid" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pid 2>/dev/null || true
    sleep 0.2
  done
  for _ in 1 2 3; do
    [ -n "$(pm5_mounts)" ] || break
    while read -r m; do
      [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
    done <<<"$(pm5_mounts)"
  done
  [ -z "$(pm5_mounts)" ]
}
