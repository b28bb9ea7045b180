# shellcheck shell=bash
# The current daemon set (versions.sh), sourced by up.sh after the registries are up: containerd 2.1
# with its CRI plugin and dockerd 28 unpacked from Debian unstable, Podman 5 served from a Debian trixie
# root. Everything lives under $CUR; sockets, bridges and subnets differ from the debian12 set so both
# can run at once. Downloads and the trixie root are kept between runs (down.sh leaves them; --purge
# removes them).

cur_ctd_ok() { timeout 5 "$CUR_ROOT/usr/bin/ctr" -a "$CUR_CTD_SOCK" version; }
cur_docker_ok() { curl -fsS -m 5 -o /dev/null --unix-socket "$CUR_DOCKER_SOCK" http://d/_ping; }
pm5_ok() { curl -fsS -m 5 -o /dev/null --unix-socket "$PM5_SOCK" http://d/_ping; }

check_sock containerd-current "$CUR_CTD_SOCK" cur_ctd_ok
check_sock dockerd-current "$CUR_DOCKER_SOCK" cur_docker_ok

# ------------------------------------------------------------------ binaries from Debian unstable
# unpack_current: apt-get download into the cache through a private sources list and lists folder (the
# system's apt state is never touched), then dpkg -x into $CUR_ROOT. A stamp names what is unpacked.
unpack_current() {
  local want="docker.io=$CURRENT_DOCKER_VERSION containerd=$CURRENT_CONTAINERD_VERSION" stamp=$CUR_ROOT/.berth-versions
  [ -f "$stamp" ] && [ "$(<"$stamp")" = "$want" ] && return 0
  local apt_dir=$CUR_CACHE/apt debs=$CUR_CACHE/debs
  mkdir -p "$apt_dir/lists/partial" "$debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) $CURRENT_SUITE main" \
    >"$apt_dir/sources.list"
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  local need=()
  for p in "docker.io_${CURRENT_DOCKER_VERSION}" "containerd_${CURRENT_CONTAINERD_VERSION}"; do
    compgen -G "$debs/${p//:/%3a}_*.deb" >/dev/null || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "fetching docker.io $CURRENT_DOCKER_VERSION and containerd $CURRENT_CONTAINERD_VERSION from Debian $CURRENT_SUITE"
    "${apt[@]}" update >>"$LOGS/apt-current.log" 2>&1 || die "apt-get update for Debian $CURRENT_SUITE failed (see $LOGS/apt-current.log)"
    (cd "$debs" && "${apt[@]}" download "docker.io=$CURRENT_DOCKER_VERSION" "containerd=$CURRENT_CONTAINERD_VERSION") \
      >>"$LOGS/apt-current.log" 2>&1 ||
      die "apt-get download of docker.io=$CURRENT_DOCKER_VERSION containerd=$CURRENT_CONTAINERD_VERSION failed (the pinned versions in scripts/runtimes/versions.sh may have left Debian $CURRENT_SUITE; see $LOGS/apt-current.log)"
  fi
  rm -rf "$CUR_ROOT"
  mkdir -p "$CUR_ROOT"
  for deb in "$debs"/docker.io_*.deb "$debs"/containerd_*.deb; do dpkg -x "$deb" "$CUR_ROOT"; done
  echo "$want" >"$stamp"
  log "unpacked $("$CUR_ROOT/usr/sbin/dockerd" --version) and $("$CUR_ROOT/usr/bin/containerd" --version | awk '{print $1, $3}')"
}
unpack_current

# The daemons find their helpers (containerd-shim-runc-v2, docker-proxy, docker-init) on PATH: unstable's
# first, then the system's (runc is Debian 12's).
CUR_PATH=$CUR_ROOT/usr/bin:$CUR_ROOT/usr/sbin:/usr/sbin:/usr/bin:/sbin:/bin

# ------------------------------------------------------------------ containerd 2.1 (+CRI), config version 3
mkdir -p "$CUR_CTD"/{root,state,tmp,runc,certs.d} "$CUR"/cni/{net.d,ipam} "$CUR"/cri-logs "$CUR"/containerd-logs \
  "$CUR_DOCKER"/{root,exec}
cat >"$CUR_CTD/config.toml" <<EOF
version = 3
root = "$CUR_CTD/root"
state = "$CUR_CTD/state"
temp = "$CUR_CTD/tmp"

[grpc]
  address = "$CUR_CTD_SOCK"

[ttrpc]
  address = "$CUR_CTD_SOCK.ttrpc"

[debug]
  level = "info"

[plugins]
  # NRI would open /var/run/nri on the host
  [plugins.'io.containerd.nri.v1.nri']
    disable = true

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$PAUSE_IMAGE"
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "$CUR_CTD/certs.d"

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    disable_apparmor = true
    # see the debian12 config: no CAP_SYS_RESOURCE on some CI machines
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$CUR_CTD/runc"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "$CUR/cni/net.d"
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF
for port in "${REGISTRY_PORTS[@]}"; do
  for host in "127.0.0.1:$port" "localhost:$port"; do
    mkdir -p "$CUR_CTD/certs.d/$host"
    cat >"$CUR_CTD/certs.d/$host/hosts.toml" <<EOF
server = "http://$host"

[host."http://$host"]
  capabilities = ["pull", "resolve", "push"]
EOF
  done
done
bridge_conflist "$CUR_CNI_NET" "$CUR_CNI_BRIDGE" "$CUR_CNI_SUBNET" "$CUR/cni/ipam" loopback \
  >"$CUR/cni/net.d/10-$CUR_CNI_NET.conflist"

start containerd-current 30 cur_ctd_ok -- env PATH="$CUR_PATH" "$CUR_ROOT/usr/bin/containerd" \
  --config "$CUR_CTD/config.toml"

# ------------------------------------------------------------------ dockerd 28 on that containerd
if [ "$WANT_DOCKER" = 1 ]; then
  cat >"$CUR_DOCKER/daemon.json" <<EOF
{
  "shutdown-timeout": 2,
  "default-address-pools": [{ "base": "$CUR_DOCKER_POOL", "size": 24 }],
  "userland-proxy-path": "$CUR_ROOT/usr/sbin/docker-proxy",
  "init-path": "$CUR_ROOT/usr/bin/docker-init"
}
EOF
  make_bridge "$CUR_DOCKER_BRIDGE" "$CUR_DOCKER_BRIDGE_CIDR"
  start dockerd-current 60 cur_docker_ok -- env PATH="$CUR_PATH" "$CUR_ROOT/usr/sbin/dockerd" \
    --config-file "$CUR_DOCKER/daemon.json" \
    --data-root "$CUR_DOCKER/root" --exec-root "$CUR_DOCKER/exec" \
    --pidfile "$CUR_DOCKER/dockerd.pid" \
    -H "unix://$CUR_DOCKER_SOCK" --containerd "$CUR_CTD_SOCK" \
    --bridge="$CUR_DOCKER_BRIDGE" --iptables=false --ip6tables=false --ip-masq=false \
    --storage-driver overlay2
fi

# ------------------------------------------------------------------ Podman 5 in a Debian trixie root
if [ "$WANT_PODMAN" = 1 ]; then
  # shellcheck source-path=SCRIPTDIR source=podman-root.sh
  . "$RT_DIR/podman-root.sh"
  pm5_build_root
  pm5_configure
  pm5_mount
  # netavark's chains: remember whether the host had any before we first came up
  [ -e "$HOSTMARK/netavark-chains" ] || [ -e "$HOSTMARK/netavark-chains-preexisting" ] ||
    if [ -n "$(netavark_chains)" ]; then : >"$HOSTMARK/netavark-chains-preexisting"; else : >"$HOSTMARK/netavark-chains"; fi
  start podman-current 60 pm5_ok -- env PODMAN_IGNORE_CGROUPSV1_WARNING=1 \
    chroot "$PM5_ROOT" /usr/bin/podman system service --time=0 unix:///run/podman/podman.sock
fi
