# shellcheck shell=bash disable=SC2034
# Shared names, paths and helpers for the runtime harness (up.sh, down.sh, check-clean.sh).
# Sourced, never run. Everything the harness owns is named here once, so that `down` and
# `check-clean` recognise exactly what `up` made and nothing else.
# shellcheck source-path=SCRIPTDIR source=versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

RT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$RT_DIR/../.." && pwd -P)
STATE=$(realpath -m -- "${BERTH_RUNTIMES_DIR:-$REPO_ROOT/.runtimes}")

REGISTRY_PORT=${BERTH_REGISTRY_PORT:-5000}
AUTH_REGISTRY_PORT=${BERTH_AUTH_REGISTRY_PORT:-5001}
# A port nothing of the harness listens on: tests bind their own hostile registries there (a tampering
# proxy), and every daemon is configured to speak plain HTTP to it, as to the two real registries.
HOSTILE_REGISTRY_PORT=${BERTH_HOSTILE_REGISTRY_PORT:-5002}
REGISTRY_PORTS=("$REGISTRY_PORT" "$AUTH_REGISTRY_PORT" "$HOSTILE_REGISTRY_PORT")
REGISTRY=127.0.0.1:$REGISTRY_PORT
AUTH_REGISTRY=127.0.0.1:$AUTH_REGISTRY_PORT
AUTH_USER=berth
TEST_IMAGE=$REGISTRY/busybox:latest
PAUSE_IMAGE=$REGISTRY/pause:3.6

RUN=$STATE/run         # pidfiles of the daemons this harness started
LOGS=$STATE/logs
HOSTMARK=$STATE/host   # what up found absent on the host before creating it (down undoes only that)
CTD_SOCK=$STATE/containerd/containerd.sock
DOCKER_SOCK=$STATE/docker/docker.sock
PODMAN_SOCK=$STATE/podman/podman.sock
# Podman's runroot must be a short path: longer than 50 characters (measured), Podman 4.3 hangs in
# attach/wait (later versions refuse such a runroot). So runroot and tmp_dir live in a small tmpfs
# folder named after the state dir, whatever its length; down.sh removes it.
PODMAN_RUNDIR=/run/berth-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
PASSWORD_FILE=$STATE/auth-registry/password

# Networks. CNI network names are what /var/lib/cni entries and portmap rules carry.
CNI_NET=berth
CNI_BRIDGE=berthcni0
CNI_SUBNET=10.88.77.0/24
PODMAN_NET=berth-podman
PODMAN_BRIDGE=berthpm0
PODMAN_SUBNET=10.213.77.0/24
PODMAN_POOL=10.213.96.0/19     # `podman network create` without --subnet
DOCKER_BRIDGE=berthdk0
DOCKER_BRIDGE_CIDR=172.31.177.1/24
DOCKER_POOL=10.213.128.0/17    # `docker network create` without --subnet

# The current set (versions.sh): its own folder, sockets and networks, so both sets can run at once.
CUR=$STATE/current
CUR_ROOT=$CUR/root                 # dockerd and containerd unpacked from Debian unstable's packages
CUR_CACHE=$CUR/cache               # the downloaded .deb files and the private apt lists
CUR_CTD=$CUR/containerd
CUR_CTD_SOCK=$CUR_CTD/containerd.sock
CUR_DOCKER=$CUR/docker
CUR_DOCKER_SOCK=$CUR_DOCKER/docker.sock
PM5_ROOT=$CUR/podman-root          # a Debian trixie root serving Podman 5 from a chroot
PM5_SOCK=$PM5_ROOT/run/podman/podman.sock
CUR_CNI_NET=berth-current
CUR_CNI_BRIDGE=berthcni1
CUR_CNI_SUBNET=10.88.78.0/24
CUR_DOCKER_BRIDGE=berthdk1
CUR_DOCKER_BRIDGE_CIDR=172.31.178.1/24
CUR_DOCKER_POOL=10.214.128.0/17
PM5_SUBNET=10.214.77.0/24          # Podman 5's default network (netavark, bridge podman0)
PM5_POOL=10.214.96.0/19

OUR_BRIDGE_NAMES=("$DOCKER_BRIDGE" "$CNI_BRIDGE" "$PODMAN_BRIDGE" "$CUR_DOCKER_BRIDGE" "$CUR_CNI_BRIDGE")
OUR_CIDRS=("$CNI_SUBNET" "${DOCKER_BRIDGE_CIDR%.*}.0/24" 10.213.0.0/16 "$CUR_CNI_SUBNET"
  "${CUR_DOCKER_BRIDGE_CIDR%.*}.0/24" 10.214.0.0/16)
OUR_CNI_NETS=("$CNI_NET" "$PODMAN_NET" "$CUR_CNI_NET")

RT_T0=$(date +%s%N)
log() { echo "[berth runtimes +$(( ($(date +%s%N) - RT_T0) / 1000000 ))ms] $*"; }
die() { echo "berth runtimes: $*" >&2; exit 1; }

# running PID: exists and is not a zombie (our daemons are reaped by init, sometimes late)
running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}
# pid in pidfile $1 is running AND is one of ours (its argv names our state dir, or it runs chrooted
# in a root under it), so a reused pid never passes for our daemon.
alive() {
  local pid root
  [ -s "$1" ] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
  root=$(readlink "/proc/$pid/root" 2>/dev/null) || true
  [[ $root == "$STATE/"* ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/"
}

# Take the harness lock (fd 9). Daemons must be started with 9>&- or they would hold it.
take_lock() {
  exec 9>"$STATE/lock"
  flock -w 600 9 || die "timed out waiting for the lock $STATE/lock"
}

ip2int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(( (a << 24) | (b << 16) | (c << 8) | d ))
}
# in_our_cidrs IP: the address lies in one of the subnets this harness hands out
in_our_cidrs() {
  local ip=$1 cidr net bits mask n
  n=$(ip2int "$ip")
  for cidr in "${OUR_CIDRS[@]}"; do
    net=${cidr%/*} bits=${cidr#*/}
    mask=$(( (0xffffffff << (32 - bits)) & 0xffffffff ))
    (( (n & mask) == ($(ip2int "$net") & mask) )) && return 0
  done
  return 1
}
# mentions_our_cidrs TEXT: any IPv4 address in TEXT is one of ours
mentions_our_cidrs() {
  local ip
  while read -r ip; do
    in_our_cidrs "$ip" && return 0
  done < <(grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' <<<"$1")
  return 1
}

# Bridges that are ours: by name, or carrying an address from our subnets/pools
# (networks that tests create through docker/podman).
our_bridges() {
  local br addrs a
  for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    if [[ " ${OUR_BRIDGE_NAMES[*]} " == *" $br "* ]]; then echo "$br"; continue; fi
    addrs=$(ip -o -4 addr show dev "$br" 2>/dev/null | awk '{print $4}')
    for a in $addrs; do
      if in_our_cidrs "${a%/*}"; then echo "$br"; break; fi
    done
  done
}

# Named network namespaces in /run/netns whose interfaces carry our addresses.
our_run_netns() {
  local ns a
  for ns in /run/netns/*; do
    [ -e "$ns" ] || continue
    ns=${ns##*/}
    for a in $(ip -n "$ns" -o -4 addr show 2>/dev/null | awk '{print $4}'); do
      if in_our_cidrs "${a%/*}"; then echo "$ns"; break; fi
    done
  done
}

# /var/lib/cni entries of ours (libcni's results cache, host-local's default data dir), found by
# network name or by the addresses they hold; results of other plugins run for the same
# containers (containerd's cni-loopback-<id>-lo) go with them.
our_var_lib_cni() {
  local f base names
  local -A out=() ids=()
  names=$(IFS='|'; echo "${OUR_CNI_NETS[*]}")
  for f in /var/lib/cni/results/*; do
    [ -f "$f" ] || continue
    base=${f##*/}
    if [[ $base =~ ^($names)-[0-9a-f]{64}-[^-]+$ ]] || mentions_our_cidrs "$(head -c 65536 "$f")"; then
      out[$f]=1
      if [[ $base =~ -([0-9a-f]{64})-[^-]+$ ]]; then ids[${BASH_REMATCH[1]}]=1; fi
    fi
  done
  for f in /var/lib/cni/results/*; do
    [[ ${f##*/} =~ -([0-9a-f]{64})-[^-]+$ ]] && [ -n "${ids[${BASH_REMATCH[1]}]:-}" ] && out[$f]=1
  done
  for f in /var/lib/cni/networks/*; do
    [ -d "$f" ] || continue
    if [[ ${f##*/} =~ ^($names)$ ]] || mentions_our_cidrs "$(ls -A "$f"; cat "$f"/last_reserved_ip.* 2>/dev/null)"; then
      out[$f]=1
    fi
  done
  [ ${#out[@]} -eq 0 ] || printf '%s\n' "${!out[@]}" | sort
}

# Host paths the runtimes (and umount's /run/mount) create when absent: down removes them again
# only if they were absent before up, and only once empty; cgroup parents the runtimes create (ctr: default, docker, CRI: k8s.io, podman).
HOST_DIRS=(/run/netns /run/containerd /run/runc /run/crun /run/docker /var/lib/cni /var/lib/containers /run/mount)
CGROUP_PARENTS=(default docker k8s.io libpod_parent)
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts; }
# marker file name for a host path: /run/netns -> dir_run_netns
marker_of() { local m=${2//\//_}; echo "$HOSTMARK/$1$m"; }

# iptables. CNI plugins make per-container chains (portmap CNI-DN-*, bridge ipMasq CNI-<hash>)
# and chains shared by every CNI user on the host (portmap CNI-HOSTPORT-*, firewall CNI-FORWARD
# and CNI-ADMIN). Per-container chains of ours are removed whole; in shared chains only our rules.
SHARED_CNI_CHAINS='^CNI-(HOSTPORT-(DNAT|MASQ|SETMARK)|FORWARD|ADMIN)$'
# shared chain groups: marker table chain-that-must-be-empty chains-to-drop...
# (CNI-FORWARD's only structural rule is its jump to CNI-ADMIN)
SHARED_GROUPS=(
  "cni-portmap-chains nat CNI-HOSTPORT-DNAT CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK"
  "cni-firewall-chains filter CNI-ADMIN CNI-FORWARD CNI-ADMIN"
)
ipt() { iptables -w 5 "$@"; }

# Podman 5's netavark (iptables driver) makes chains named NETAVARK* in the filter and nat tables and
# leaves them when its last container goes. Ours only when the host had none before up: "table chain".
netavark_chains() {
  local table
  command -v iptables >/dev/null || return 0
  for table in nat filter; do
    ipt -t "$table" -S 2>/dev/null | awk -v t="$table" '$1 == "-N" && $2 ~ /^NETAVARK/ {print t " " $2}'
  done
}

# rule_is_ours RULE: names our subnets, or carries a CNI comment with one of our network names
rule_is_ours() {
  local net
  mentions_our_cidrs "$1" && return 0
  for net in "${OUR_CNI_NETS[@]}"; do
    [[ $1 == *"name: \\\"$net\\\" id:"* ]] && return 0
  done
  return 1
}

# Per-container CNI chains of ours: "table chain"
our_cni_chains() {
  local table rules chain
  command -v iptables >/dev/null || return 0
  for table in nat filter; do
    rules=$(ipt -t "$table" -S 2>/dev/null) || continue
    while read -r chain; do
      [[ $chain =~ $SHARED_CNI_CHAINS ]] && continue
      if rule_is_ours "$(grep -E -- "^-A $chain |-j $chain( |$)" <<<"$rules")"; then echo "$table $chain"; fi
    done < <(awk '$1 == "-N" && $2 ~ /^CNI-/ {print $2}' <<<"$rules")
  done
}

# Our rules inside shared CNI chains: "table chain rulenum", highest number first per chain
our_shared_cni_rules() {
  local table chain n line
  command -v iptables >/dev/null || return 0
  for table in nat filter; do
    for chain in $(ipt -t "$table" -S 2>/dev/null | awk '$1 == "-N" {print $2}'); do
      [[ $chain =~ $SHARED_CNI_CHAINS ]] || continue
      n=0
      while read -r line; do
        n=$((n + 1))
        if rule_is_ours "$line"; then echo "$table $chain $n"; fi
      done < <(ipt -t "$table" -S "$chain" | grep '^-A')
    done
  done | sort -k1,2 -k3,3rn
}

# Processes whose root directory lies under the state dir: Podman 5's service and its conmons run
# chrooted in the trixie root, with argv paths relative to it.
procs_rooted_in_state() {
  local d root
  for d in /proc/[0-9]*; do
    root=$(readlink "$d/root" 2>/dev/null) || continue
    [[ $root == "$STATE/"* ]] && echo "${d#/proc/} $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
  done
  return 0
}

# Processes (other than this shell and its ancestors) whose argv mentions the state dir.
procs_mentioning_state() {
  local d pid skip=" $$ " p=$$ cmd
  while [ "$p" -gt 1 ] 2>/dev/null; do
    p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) || break
    skip+="$p "
  done
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ $skip == *" $pid "* ]] && continue
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    [[ $cmd == *"$STATE/"* || $cmd == *"$PODMAN_RUNDIR/"* ]] && echo "$pid $cmd"
  done
  return 0
}

# Mount points at or below the state dir, deepest first (mountinfo escapes spaces as \040).
mounts_under_state() {
  awk '{print $5}' /proc/self/mountinfo | while read -r m; do
    m=$(printf '%b' "$m")
    if [[ $m == "$STATE" || $m == "$STATE/"* || $m == "$PODMAN_RUNDIR/"* ]]; then echo "$m"; fi
  done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2- | uniq
}
