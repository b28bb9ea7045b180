#!/usr/bin/env bash
# Start real container runtimes for berth's integration tests, all state in one folder:
#   registry (plain HTTP) and a basic-auth registry, both seeded with an offline busybox image;
#   then per daemon set (versions.sh): containerd with CRI (CNI bridge, runc handler); dockerd on that
#   containerd; the Podman API service. Set debian12: Debian 12's packages. Set current: Docker 28 and
#   containerd 2.1 unpacked from Debian unstable, Podman 5 in a Debian trixie root (state in <state>/current).
#   Writes <state>/env.<set> per set (KEY=VALUE), <state>/env (the first set up, and which sets are up)
#   and <state>/env.sh (exports).
# Idempotent: a daemon of ours that is alive and answering is left alone.
#
# Usage: up.sh [--set debian12|current|all] [--no-docker] [--no-podman]
# Env:   BERTH_RUNTIMES_DIR (default <repo>/.runtimes), BERTH_RUNTIME_SET (default set: debian12),
#        BERTH_REGISTRY_PORT (5000), BERTH_AUTH_REGISTRY_PORT (5001)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WANT_DOCKER=1 WANT_PODMAN=1 SETS=${BERTH_RUNTIME_SET:-debian12}
while [ $# -gt 0 ]; do
  case "$1" in
    --no-docker) WANT_DOCKER=0 ;;
    --no-podman) WANT_PODMAN=0 ;;
    --set) [ $# -ge 2 ] || die "--set needs a value"; SETS=$2; shift ;;
    --set=*) SETS=${1#--set=} ;;
    -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (use --set debian12|current|all, --no-docker, --no-podman)" ;;
  esac
  shift
done
WANT_D12=0 WANT_CUR=0
case "$SETS" in
  debian12) WANT_D12=1 ;;
  current) WANT_CUR=1 ;;
  all) WANT_D12=1 WANT_CUR=1 ;;
  *) die "unknown daemon set '$SETS' (debian12, current or all)" ;;
esac

# ------------------------------------------------------------------ preflight
# Paths are embedded unquoted in TOML/JSON/env files: keep them plain.
[[ $STATE =~ ^[A-Za-z0-9._/@+-]+$ ]] || die "state dir path has characters the config files cannot carry: $STATE (set BERTH_RUNTIMES_DIR)"
# Longest unix socket we (or our daemons) create: dockerd's <exec-root>/libnetwork/<12 hex>.sock.
longest_sock="$STATE/docker/exec/libnetwork/0123456789ab.sock"
[ "$WANT_CUR" = 1 ] && longest_sock="$CUR_DOCKER/exec/libnetwork/0123456789ab.sock"
[ "${#longest_sock}" -lt 108 ] ||
  die "state dir path too long for unix sockets (${#longest_sock} >= 108 bytes for $longest_sock): set BERTH_RUNTIMES_DIR to a shorter path"
for p in "${REGISTRY_PORTS[@]}"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "invalid port: $p"; fi
done
[ "$(printf '%s\n' "${REGISTRY_PORTS[@]}" | sort -u | wc -l)" = 3 ] ||
  die "BERTH_REGISTRY_PORT, BERTH_AUTH_REGISTRY_PORT and BERTH_HOSTILE_REGISTRY_PORT must differ"

PKGS=(runc busybox-static containernetworking-plugins docker-registry skopeo umoci openssh-server openssh-client
  iproute2 curl apache2-utils iptables)
if [ "$WANT_D12" = 1 ]; then
  PKGS+=(containerd crun)
  [ "$WANT_DOCKER" = 1 ] && PKGS+=(docker.io)
  [ "$WANT_PODMAN" = 1 ] && PKGS+=(podman conmon)
fi
[ "$WANT_CUR" = 1 ] && [ "$WANT_PODMAN" = 1 ] && PKGS+=(debootstrap)
installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PKGS[@]}" 2>/dev/null |
  awk '$1 == "ii" {printf "%s ", $2}' || true)"
missing=()
for p in "${PKGS[@]}"; do [[ $installed == *" $p "* ]] || missing+=("$p"); done
if [ "$(id -u)" != 0 ]; then
  [ ${#missing[@]} -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
  die "must run as root to start container daemons"
fi

mkdir -p "$STATE"
take_lock
mkdir -p "$RUN" "$LOGS" "$HOSTMARK"

if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$LOGS/apt.log
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
    { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } >>"$apt_log" 2>&1 || {
      echo "berth runtimes: apt-get install failed; last 30 lines of $apt_log:" >&2
      tail -n 30 "$apt_log" >&2
      exit 1
    }
  fi
  log "apt-get done"
fi
[ "$WANT_D12" = 0 ] || [ -x /usr/bin/crun ] || die "/usr/bin/crun is missing after installing crun"

# ------------------------------------------------------------------ helpers
port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
reg_ok() { curl -fsS -m 5 -o /dev/null "http://$REGISTRY/v2/"; }
# the auth registry answers /v2/ with 401 to anonymous callers
auth_reg_ok() { [ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://$AUTH_REGISTRY/v2/")" = 401 ]; }
ctd_ok() { timeout 5 ctr -a "$CTD_SOCK" version; }
docker_ok() { curl -fsS -m 5 -o /dev/null --unix-socket "$DOCKER_SOCK" http://d/_ping; }
podman_ok() { curl -fsS -m 5 -o /dev/null --unix-socket "$PODMAN_SOCK" http://d/_ping; }

# make_bridge NAME CIDR: a bridge with that address, up (dockerd uses it with --bridge)
make_bridge() {
  ip link show "$1" >/dev/null 2>&1 || ip link add "$1" type bridge
  ip -4 addr show dev "$1" | grep -qF "inet $2 " || ip addr add "$2" dev "$1"
  ip link set "$1" up
}

# spawn NAME CMD...: start detached in its own session (a CI step ending does not take it down),
# without our lock fd, pid -> run/NAME.pid
spawn() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$RUN/$name.pid"
}

# fail_daemon NAME WHY: stop what we just started, show the log tail, exit non-zero
fail_daemon() {
  local name=$1 why=$2 pf=$RUN/$1.pid pid
  pid=$(cat "$pf" 2>/dev/null || true)
  if [ -n "$pid" ] && running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
  {
    echo "berth runtimes: $name $why"
    echo "---- last 30 lines of $name log: $LOGS/$name.log ----"
    tail -n 30 "$LOGS/$name.log" 2>/dev/null || true
    echo "---- end of $name log ----"
  } >&2
  exit 1
}

# wait_up NAME TIMEOUT_S CHECK...: wait for the daemon's socket; fail fast if it died
# (by pid only: just after the fork the child's argv is still ours, not the daemon's)
wait_up() {
  local name=$1 t=$2 pid; shift 2
  local end=$(( $(date +%s) + t ))
  pid=$(<"$RUN/$name.pid")
  until "$@" >/dev/null 2>&1; do
    running "$pid" || fail_daemon "$name" "exited while starting"
    [ "$(date +%s)" -lt "$end" ] || fail_daemon "$name" "did not answer within ${t}s"
    sleep 0.05
  done
}

# start NAME TIMEOUT CHECK_FN -- CMD...: leave an answering daemon of ours alone, else start it
start() {
  local name=$1 t=$2 check=$3; shift 4
  if alive "$RUN/$name.pid"; then
    if "$check" >/dev/null 2>&1; then
      log "$name already running (pid $(<"$RUN/$name.pid"))"
      return 0
    fi
    # ours but not answering yet (or wedged): give it the start-up timeout
    wait_up "$name" "$t" "$check"
    log "$name answering (pid $(<"$RUN/$name.pid"))"
    return 0
  fi
  rm -f "$RUN/$name.pid"
  spawn "$name" "$@"
  wait_up "$name" "$t" "$check"
  log "$name up (pid $(<"$RUN/$name.pid"))"
}

# before anything starts: a registry port held by something that is not ours is fatal
check_port() { # pidname port envvar check
  if alive "$RUN/$1.pid" && "$4" >/dev/null 2>&1; then return 0; fi
  if port_busy "$2"; then
    die "port 127.0.0.1:$2 is already in use by another process (set $3)"
  fi
}
check_port registry "$REGISTRY_PORT" BERTH_REGISTRY_PORT reg_ok
check_port auth-registry "$AUTH_REGISTRY_PORT" BERTH_AUTH_REGISTRY_PORT auth_reg_ok
# our sockets answered by a process we did not start (e.g. its pidfile was deleted)
check_sock() { # pidname sock check
  if [ -S "$2" ] && ! alive "$RUN/$1.pid"; then
    "$3" >/dev/null 2>&1 && die "$2 is served by a process this harness did not start (stop it, then rerun)"
    rm -f "$2"
  fi
  return 0
}
check_sock containerd "$CTD_SOCK" ctd_ok
check_sock dockerd "$DOCKER_SOCK" docker_ok
check_sock podman "$PODMAN_SOCK" podman_ok

# Host state outside the state dir that the runtimes create: remember what was absent before
# we first came up, so down removes only that (never a pre-existing dir, chain, cgroup or value).
mark_absent() { # marker-file test...
  [ -e "$1" ] || "${@:2}" >/dev/null 2>&1 || : >"$1"
}
for d in "${HOST_DIRS[@]}"; do mark_absent "$(marker_of dir "$d")" test -e "$d"; done
for cg in "${CGROUP_PARENTS[@]}"; do
  present=0
  for m in $(cgroup_mounts); do [ -d "$m/$cg" ] && present=1; done
  [ "$present" = 1 ] || [ -e "$(marker_of cgroup "/$cg")" ] || : >"$(marker_of cgroup "/$cg")"
done
for group in "${SHARED_GROUPS[@]}"; do
  read -r mk table chain _ <<<"$group"
  mark_absent "$HOSTMARK/$mk" ipt -t "$table" -S "$chain"
done
# CNI's bridge plugin (isGateway) and dockerd turn on IPv4 forwarding; down restores the value
[ -e "$HOSTMARK/ip_forward" ] || cat /proc/sys/net/ipv4/ip_forward >"$HOSTMARK/ip_forward"

# ------------------------------------------------------------------ config files (rewritten every run)
mkdir -p "$STATE"/registry/data "$STATE"/auth-registry/data "$STATE"/oci \
  "$STATE"/containerd/{root,state,tmp,opt,runc,crun} "$STATE"/cni/{net.d,ipam} "$STATE"/cri-logs "$STATE"/containerd-logs \
  "$STATE"/docker/{root,exec} "$STATE"/podman/{tmp,storage,net.d,ipam}

write_registry_config() { # dir port [auth]
  cat >"$1/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $1/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  if [ "${3:-}" = auth ]; then
    cat >>"$1/config.yml" <<EOF
auth:
  htpasswd:
    realm: berth
    path: $1/htpasswd
EOF
  fi
}
write_registry_config "$STATE/registry" "$REGISTRY_PORT"
write_registry_config "$STATE/auth-registry" "$AUTH_REGISTRY_PORT" auth

# password generated once, kept across runs (tests may cache it)
if [ ! -s "$PASSWORD_FILE" ]; then
  (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24 >"$PASSWORD_FILE")
fi
AUTH_PASSWORD=$(<"$PASSWORD_FILE")
if [ ! -s "$STATE/auth-registry/htpasswd" ]; then
  (umask 077; htpasswd -B -i -c "$STATE/auth-registry/htpasswd" "$AUTH_USER" <"$PASSWORD_FILE" 2>/dev/null)
fi

cat >"$STATE/policy.json" <<'EOF'
{ "default": [{ "type": "insecureAcceptAnything" }] }
EOF

# crun refuses hybrid cgroup hosts (v1 controllers + a cgroup2 mount that has controllers);
# the handler stays registered, tests learn from BERTH_CRI_RUNTIME_HANDLERS whether it can run.
CRI_HANDLERS=runc,crun
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
  CRI_HANDLERS=runc
  log "note: crun cannot run containers on this host (hybrid cgroups with controllers on cgroup2)"
fi

CTD=$STATE/containerd
cat >"$CTD/config.toml" <<EOF
version = 2
root = "$CTD/root"
state = "$CTD/state"
temp = "$CTD/tmp"

[grpc]
  address = "$CTD_SOCK"

[ttrpc]
  address = "$CTD_SOCK.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTD/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true
    enable_selinux = false
    disable_apparmor = true
    # pods default to a negative oom_score_adj, which needs CAP_SYS_RESOURCE (CI machines may
    # lack it): clamp to containerd's own value instead
    restrict_oom_score_adj = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$CTD/runc"
          SystemdCgroup = false
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
          BinaryName = "/usr/bin/crun"
          Root = "$CTD/crun"
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$STATE/cni/net.d"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$CTD/certs.d"
EOF

for port in "${REGISTRY_PORTS[@]}"; do
  for host in "127.0.0.1:$port" "localhost:$port"; do
    mkdir -p "$CTD/certs.d/$host"
    cat >"$CTD/certs.d/$host/hosts.toml" <<EOF
server = "http://$host"

[host."http://$host"]
  capabilities = ["pull", "resolve", "push"]
EOF
  done
done

# bridge_conflist NAME BRIDGE SUBNET IPAMDIR LASTPLUGIN
bridge_conflist() {
  cat <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$1",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$2",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$4",
        "ranges": [[{ "subnet": "$3", "gateway": "${3%.*}.1" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "$5" }
  ]
}
EOF
}
bridge_conflist "$CNI_NET" "$CNI_BRIDGE" "$CNI_SUBNET" "$STATE/cni/ipam" loopback >"$STATE/cni/net.d/10-$CNI_NET.conflist"
bridge_conflist "$PODMAN_NET" "$PODMAN_BRIDGE" "$PODMAN_SUBNET" "$STATE/podman/ipam" tuning >"$STATE/podman/net.d/$PODMAN_NET.conflist"

cat >"$STATE/docker/daemon.json" <<EOF
{
  "deprecated-key-path": "$STATE/docker/key.json",
  "shutdown-timeout": 2,
  "default-address-pools": [{ "base": "$DOCKER_POOL", "size": 24 }]
}
EOF

# No CAP_SYS_RESOURCE on some CI machines: runc cannot raise rlimits, and podman's rootful
# default (nofile/nproc 1048576) fails; pin them to what this process already has.
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
PM=$STATE/podman
mkdir -p "$PODMAN_RUNDIR/tmp" "$PODMAN_RUNDIR/run"
cat >"$PM/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
tmp_dir = "$PODMAN_RUNDIR/tmp"
image_copy_tmp_dir = "$PM/tmp"
volume_path = "$PM/storage/volumes"
static_dir = "$PM/storage/libpod"
runtime = "runc"
lock_type = "file"
infra_image = "$PAUSE_IMAGE"

[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$PM/net.d"
default_network = "$PODMAN_NET"
default_subnet = "$PODMAN_SUBNET"
default_subnet_pools = [{ base = "$PODMAN_POOL", size = 24 }]
EOF
cat >"$PM/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$PODMAN_RUNDIR/run"
graphroot = "$PM/storage"
EOF
{
  echo 'unqualified-search-registries = []'
  for port in "${REGISTRY_PORTS[@]}"; do
    for host in "127.0.0.1:$port" "localhost:$port"; do
      printf '\n[[registry]]\nlocation = "%s"\ninsecure = true\n' "$host"
    done
  done
} >"$PM/registries.conf"
log "config files written to $STATE"

# ------------------------------------------------------------------ registries + test image
start registry 30 reg_ok -- /usr/bin/docker-registry serve "$STATE/registry/config.yml"

L=$STATE/oci/busybox
if ! umoci ls --layout "$L" 2>/dev/null | grep -qx pause; then
  B=$STATE/oci/bundle
  rm -rf "$L" "$B"
  umoci init --layout "$L"
  umoci new --image "$L:latest"
  umoci unpack --image "$L:latest" "$B" >/dev/null
  R=$B/rootfs
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var}
  chmod 1777 "$R/tmp"
  cp /bin/busybox "$R/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$R/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$R/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$R/etc/group"
  umoci repack --image "$L:latest" "$B" >/dev/null
  rm -rf "$B"
  umoci config --image "$L:latest" --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd sh --config.workingdir /
  umoci config --image "$L:latest" --tag pause --clear=config.cmd \
    --config.entrypoint /bin/sleep --config.cmd infinity
  umoci gc --layout "$L"
  log "test image built (OCI layout $L)"
fi

# push LAYOUT_TAG REGISTRY REPO TAG [CREDS]: skopeo copy unless the manifest is already there
push() {
  local creds=()
  [ -n "${5:-}" ] && creds=(-u "$5")
  if curl -fsS -o /dev/null "${creds[@]}" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$2/v2/$3/manifests/$4" 2>/dev/null; then
    return 0
  fi
  creds=()
  [ -n "${5:-}" ] && creds=(--dest-creds "$5")
  skopeo --policy "$STATE/policy.json" copy -q --dest-tls-verify=false "${creds[@]}" \
    "oci:$L:$1" "docker://$2/$3:$4"
  log "pushed $2/$3:$4"
}
push latest "$REGISTRY" busybox latest
push pause "$REGISTRY" pause 3.6

start auth-registry 30 auth_reg_ok -- /usr/bin/docker-registry serve "$STATE/auth-registry/config.yml"
push latest "$AUTH_REGISTRY" busybox latest "$AUTH_USER:$AUTH_PASSWORD"

# ------------------------------------------------------------------ debian12: containerd (+CRI), dockerd, podman
if [ "$WANT_D12" = 1 ]; then
  start containerd 30 ctd_ok -- /usr/bin/containerd --config "$CTD/config.toml"

  if [ "$WANT_DOCKER" = 1 ]; then
    make_bridge "$DOCKER_BRIDGE" "$DOCKER_BRIDGE_CIDR"
    start dockerd 60 docker_ok -- /usr/sbin/dockerd \
      --config-file "$STATE/docker/daemon.json" \
      --data-root "$STATE/docker/root" --exec-root "$STATE/docker/exec" \
      --pidfile "$STATE/docker/dockerd.pid" \
      -H "unix://$DOCKER_SOCK" --containerd "$CTD_SOCK" \
      --bridge="$DOCKER_BRIDGE" --iptables=false --ip-masq=false \
      --storage-driver overlay2
  fi

  if [ "$WANT_PODMAN" = 1 ]; then
    start podman 30 podman_ok -- env CONTAINERS_CONF="$PM/containers.conf" \
      CONTAINERS_STORAGE_CONF="$PM/storage.conf" CONTAINERS_REGISTRIES_CONF="$PM/registries.conf" \
      /usr/bin/podman system service --time=0 "unix://$PODMAN_SOCK"
  fi
fi

# ------------------------------------------------------------------ current: Docker 28, containerd 2.1, Podman 5
if [ "$WANT_CUR" = 1 ]; then
  # shellcheck source-path=SCRIPTDIR source=current.sh
  . "$RT_DIR/current.sh"
fi

# ------------------------------------------------------------------ env files
common_env() {
  cat <<EOF
BERTH_REGISTRY=$REGISTRY
BERTH_AUTH_REGISTRY=$AUTH_REGISTRY
BERTH_AUTH_REGISTRY_USER=$AUTH_USER
BERTH_AUTH_REGISTRY_PASSWORD=$AUTH_PASSWORD
BERTH_HOSTILE_REGISTRY=127.0.0.1:$HOSTILE_REGISTRY_PORT
BERTH_TEST_IMAGE=$TEST_IMAGE
BERTH_PAUSE_IMAGE=$PAUSE_IMAGE
BERTH_RUNTIMES_DIR=$STATE
EOF
}
debian12_env() {
  alive "$RUN/dockerd.pid" && echo "DOCKER_HOST=unix://$DOCKER_SOCK"
  cat <<EOF
CONTAINERD_ADDRESS=$CTD_SOCK
CONTAINERD_NAMESPACE=default
CONTAINER_RUNTIME_ENDPOINT=unix://$CTD_SOCK
EOF
  alive "$RUN/podman.pid" && echo "PODMAN_HOST=unix://$PODMAN_SOCK"
  common_env
  cat <<EOF
BERTH_RUNTIME_SET=debian12
BERTH_SET_DIR=$STATE
BERTH_CONTAINERD_HOSTS_DIR=$CTD/certs.d
BERTH_CRI_LOG_DIR=$STATE/cri-logs
BERTH_CONTAINERD_LOG_DIR=$STATE/containerd-logs
BERTH_RUNC_ROOT=$CTD/runc
BERTH_CRI_RUNTIME_HANDLERS=$CRI_HANDLERS
CONTAINERS_CONF=$PM/containers.conf
CONTAINERS_STORAGE_CONF=$PM/storage.conf
CONTAINERS_REGISTRIES_CONF=$PM/registries.conf
EOF
}
current_env() {
  alive "$RUN/dockerd-current.pid" && echo "DOCKER_HOST=unix://$CUR_DOCKER_SOCK"
  cat <<EOF
CONTAINERD_ADDRESS=$CUR_CTD_SOCK
CONTAINERD_NAMESPACE=default
CONTAINER_RUNTIME_ENDPOINT=unix://$CUR_CTD_SOCK
EOF
  alive "$RUN/podman-current.pid" && echo "PODMAN_HOST=unix://$PM5_SOCK"
  common_env
  cat <<EOF
BERTH_RUNTIME_SET=current
BERTH_SET_DIR=$CUR
BERTH_CONTAINERD_HOSTS_DIR=$CUR_CTD/certs.d
BERTH_CRI_LOG_DIR=$CUR/cri-logs
BERTH_CONTAINERD_LOG_DIR=$CUR/containerd-logs
BERTH_RUNC_ROOT=$CUR_CTD/runc
BERTH_CRI_RUNTIME_HANDLERS=runc
BERTH_PODMAN_ROOT=$PM5_ROOT
EOF
}
# write_env FILE FUNCTION: atomically, readable by root only (it holds the auth registry's password)
write_env() {
  "$2" >"$1.tmp"
  chmod 600 "$1.tmp"
  mv -f "$1.tmp" "$1"
}
sets_up=()
if alive "$RUN/containerd.pid"; then
  write_env "$STATE/env.debian12" debian12_env
  sets_up+=(debian12)
else
  rm -f "$STATE/env.debian12"
fi
if alive "$RUN/containerd-current.pid"; then
  write_env "$STATE/env.current" current_env
  sets_up+=(current)
else
  rm -f "$STATE/env.current"
fi
[ ${#sets_up[@]} -gt 0 ] || die "no daemon set is up"
# env: the first set that is up (debian12 before current), with the list of the sets that are
{ cat "$STATE/env.${sets_up[0]}"; echo "BERTH_RUNTIME_SETS=${sets_up[*]}"; } >"$STATE/env.tmp"
sed 's/^/export /' "$STATE/env.tmp" >"$STATE/env.sh.tmp"
chmod 600 "$STATE/env.tmp" "$STATE/env.sh.tmp"
mv -f "$STATE/env.tmp" "$STATE/env"
mv -f "$STATE/env.sh.tmp" "$STATE/env.sh"
log "runtimes up (sets: ${sets_up[*]}); env: $STATE/env.<set> (shell: . $STATE/env.sh)"
