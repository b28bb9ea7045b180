#!/usr/bin/env bash
# Stop what up.sh started (by pid from its pidfiles only) and undo what the runtimes left on the
# host: containers, mounts under the state dir, our netns, bridges, CNI state and iptables chains.
# Safe when nothing runs; idempotent.
#
# Usage: down.sh [--purge]   (--purge also deletes images/containers/volumes under the state dir)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PURGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    -h | --help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $a (use --purge)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "must run as root"

HAVE_STATE=0
if [ -d "$STATE" ]; then
  HAVE_STATE=1
  take_lock
  mkdir -p "$LOGS"
fi
DOWN_LOG=/dev/null
[ "$HAVE_STATE" = 1 ] && DOWN_LOG=$LOGS/down.log

# stop NAME TIMEOUT_S: TERM, wait, then KILL the daemon whose pid is in run/NAME.pid
stop() {
  local name=$1 t=$2 pf=$RUN/$1.pid pid
  if ! alive "$pf"; then rm -f "$pf"; return 0; fi
  pid=$(<"$pf")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((t * 20))); do running "$pid" || break; sleep 0.05; done
  if running "$pid"; then
    log "$name (pid $pid) ignored SIGTERM for ${t}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.05; done
  fi
  rm -f "$pf"
  log "$name stopped (pid $pid)"
}

# kill_procs COMM_REGEX: kill processes of that name whose argv mentions our state dir
kill_procs() {
  local d comm cmd
  for d in /proc/[0-9]*; do
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    [[ $comm =~ $1 ]] || continue
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    if [[ $cmd == *"$STATE/"* ]]; then
      log "killing leftover $comm (pid ${d#/proc/})"
      kill -KILL "${d#/proc/}" 2>/dev/null || true
    fi
  done
}

# ------------------------------------------------------------------ podman
PM=$STATE/podman
pm() {
  CONTAINERS_CONF=$PM/containers.conf CONTAINERS_STORAGE_CONF=$PM/storage.conf \
    CONTAINERS_REGISTRIES_CONF=$PM/registries.conf timeout 120 podman "$@"
}
pm_netns=()
if [ -d "$PM/storage/libpod" ] && [ -f "$PM/containers.conf" ] && command -v podman >/dev/null; then
  # podman tears down its netns itself; remember them in case it cannot
  mapfile -t pm_ids < <(pm ps -aq 2>>"$DOWN_LOG" || true)
  if [ ${#pm_ids[@]} -gt 0 ]; then
    mapfile -t pm_netns < <(pm inspect --format '{{.NetworkSettings.SandboxKey}}' "${pm_ids[@]}" 2>>"$DOWN_LOG" | grep '^/run/netns/' || true)
    log "removing ${#pm_ids[@]} podman container(s)"
    pm rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
    pm pod rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
    pm rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
  fi
fi
stop podman 10
kill_procs '^conmon$'   # exec sessions keep a conmon for 300s

# ------------------------------------------------------------------ podman 5 (current set, chrooted)
if [ -d "$PM5_ROOT" ]; then
  # shellcheck source-path=SCRIPTDIR source=podman-root.sh
  . "$RT_DIR/podman-root.sh"
  if alive "$RUN/podman-current.pid"; then
    pm5() { timeout 120 chroot "$PM5_ROOT" /usr/bin/podman "$@"; }
    n=$(pm5 ps -aq 2>>"$DOWN_LOG" | wc -l || true)
    if [ "${n:-0}" -gt 0 ]; then
      log "removing $n podman 5 container(s)"
      pm5 rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
      pm5 pod rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
      pm5 rm -af -t 0 >>"$DOWN_LOG" 2>&1 || true
    fi
  fi
  stop podman-current 10
  pm5_unmount || log "WARNING: still mounted under $PM5_ROOT: $(pm5_mounts | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ dockerd (both sets)
# docker_down PIDNAME SOCKET: remove every container through the API, then stop the daemon
docker_down() {
  local ids id
  if alive "$RUN/$1.pid"; then
    ids=$(curl -fsS -m 10 --unix-socket "$2" 'http://d/containers/json?all=1' 2>/dev/null |
      grep -o '"Id":"[0-9a-f]\{64\}"' | cut -d'"' -f4 || true)
    for id in $ids; do
      curl -fsS -m 30 -o /dev/null -X DELETE --unix-socket "$2" "http://d/containers/$id?force=1&v=1" || true
    done
    [ -z "$ids" ] || log "removed $(wc -w <<<"$ids") $1 container(s)"
  fi
  stop "$1" 20
}
docker_down dockerd "$DOCKER_SOCK"
docker_down dockerd-current "$CUR_DOCKER_SOCK"

# ------------------------------------------------------------------ containerd (CRI pods, then all namespaces)
# No crictl in Debian: CRI pods go with ctr like everything else; their CNI state (netns, veths,
# IPAM, results cache, portmap chains) is removed below.
# containerd_down PIDNAME CTR SOCKET
containerd_down() {
  local CTR ns tasks t ctrs c n
  if ! alive "$RUN/$1.pid"; then stop "$1" 15; return 0; fi
  CTR=(timeout 30 "$2" -a "$3")
  for ns in $("${CTR[@]}" namespaces ls -q 2>/dev/null); do
    tasks=$("${CTR[@]}" -n "$ns" tasks ls -q 2>/dev/null || true)
    for t in $tasks; do "${CTR[@]}" -n "$ns" tasks kill -a -s SIGKILL "$t" >>"$DOWN_LOG" 2>&1 || true; done
    for t in $tasks; do # CRI deletes its own exited tasks: stop once the task is gone
      for _ in $(seq 50); do
        "${CTR[@]}" -n "$ns" tasks ls -q 2>/dev/null | grep -qx -- "$t" || break
        "${CTR[@]}" -n "$ns" tasks rm -f "$t" >>"$DOWN_LOG" 2>&1 && break
        sleep 0.1
      done
    done
    ctrs=$("${CTR[@]}" -n "$ns" containers ls -q 2>/dev/null || true)
    for c in $ctrs; do "${CTR[@]}" -n "$ns" containers rm "$c" >>"$DOWN_LOG" 2>&1 || true; done
    n=$(wc -w <<<"$tasks $ctrs")
    [ "$n" = 0 ] || log "$1 namespace $ns: removed $(wc -w <<<"$tasks") task(s), $(wc -w <<<"$ctrs") container(s)"
  done
  stop "$1" 15
}
containerd_down containerd ctr "$CTD_SOCK"
containerd_down containerd-current "$CUR_ROOT/usr/bin/ctr" "$CUR_CTD_SOCK"
kill_procs '^containerd-shim'

# containers whose shim is gone but whose processes are not (runc/crun state under our roots)
if [ "$HAVE_STATE" = 1 ]; then
  for bin in runc crun; do
    command -v "$bin" >/dev/null || continue
    while read -r st; do
      root=$(dirname "$(dirname "$st")") id=$(basename "$(dirname "$st")")
      log "$bin delete --force $id"
      "$bin" --root "$root" delete --force "$id" >>"$DOWN_LOG" 2>&1 || true
    done < <(find "$STATE/containerd/$bin" "$STATE/docker/exec/runtime-$bin" "$CUR_CTD/$bin" \
      "$CUR_DOCKER/exec/runtime-$bin" -mindepth 3 -maxdepth 3 \
      \( -name state.json -o -name status \) 2>/dev/null)
  done
fi

# ------------------------------------------------------------------ registries
stop auth-registry 10
stop registry 10

# ------------------------------------------------------------------ host state
# netns of ours in /run/netns (podman's; CRI's and dockerd's live under the state dir)
for ns in $(our_run_netns) "${pm_netns[@]##*/}"; do
  if [ -e "/run/netns/$ns" ] && ip netns delete "$ns" 2>/dev/null; then log "deleted netns $ns"; fi
done

# everything mounted under the state dir (overlay rootfs, shm, netns, storage), deepest first
unmounted=0
for _ in 1 2 3 4 5; do
  mnts=$(mounts_under_state)
  [ -n "$mnts" ] || break
  while read -r m; do
    if umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; then unmounted=$((unmounted + 1)); fi
  done <<<"$mnts"
done
[ "$unmounted" = 0 ] || log "unmounted $unmounted mount(s) under $STATE"
[ -z "$(mounts_under_state)" ] || log "WARNING: still mounted: $(mounts_under_state | tr '\n' ' ')"
if [ -d "$PODMAN_RUNDIR" ] && [ -z "$(mounts_under_state)" ]; then
  rm -rf "${PODMAN_RUNDIR:?}" && log "removed $PODMAN_RUNDIR"
fi

# bridges (ours by name, or by address for networks tests created) and the veths on them
for br in $(our_bridges); do
  for v in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  if ip link del "$br" 2>/dev/null; then log "deleted bridge $br"; fi
done

# CNI: host-local IPAM in the state dir (all stale now), results cache in /var/lib/cni
if [ "$HAVE_STATE" = 1 ]; then
  rm -rf "${STATE:?}"/cni/ipam/* "${STATE:?}"/podman/ipam/* "${CUR:?}"/cni/ipam/*
fi
mapfile -t cni_entries < <(our_var_lib_cni)
if [ ${#cni_entries[@]} -gt 0 ]; then
  rm -rf "${cni_entries[@]}"
  log "removed ${#cni_entries[@]} /var/lib/cni entr(ies)"
fi

# iptables: per-container CNI chains of ours, our rules in shared CNI chains, and the shared
# chains themselves when we created them and nobody else has rules in them
# ipt_drop TABLE CHAIN: delete every rule jumping to CHAIN, then CHAIN itself
ipt_drop() {
  local t=$1 x=$2 c num
  for c in $(ipt -t "$t" -S | awk '$1 == "-P" || $1 == "-N" {print $2}'); do
    for num in $(ipt -t "$t" -L "$c" -n --line-numbers | awk -v x="$x" '$2 == x {print $1}' | sort -rn); do
      ipt -t "$t" -D "$c" "$num"
    done
  done
  ipt -t "$t" -F "$x" && ipt -t "$t" -X "$x"
}
while read -r table chain; do
  [ -n "$chain" ] || continue
  if ipt_drop "$table" "$chain" 2>/dev/null; then log "deleted iptables $table chain $chain"; fi
done <<<"$(our_cni_chains)"
while read -r table chain num; do
  [ -n "$num" ] || continue
  ipt -t "$table" -D "$chain" "$num" 2>/dev/null || true
done <<<"$(our_shared_cni_rules)"
for group in "${SHARED_GROUPS[@]}"; do
  read -r mk table must_be_empty drop <<<"$group"
  [ -e "$HOSTMARK/$mk" ] || continue
  if ipt -t "$table" -S "$must_be_empty" >/dev/null 2>&1; then
    [ "$(ipt -t "$table" -S "$must_be_empty" | grep -c '^-A')" = 0 ] || continue
    for c in $drop; do ipt_drop "$table" "$c" 2>/dev/null || true; done
    log "deleted shared iptables $table chains $drop"
  fi
  rm -f "$HOSTMARK/$mk"
done

# netavark's chains (Podman 5), when the host had none before up
if [ -e "$HOSTMARK/netavark-chains" ]; then
  while read -r table chain; do
    [ -n "$chain" ] && ipt -t "$table" -F "$chain" 2>/dev/null || true
  done <<<"$(netavark_chains)"
  while read -r table chain; do
    [ -n "$chain" ] && ipt_drop "$table" "$chain" 2>/dev/null || true
  done <<<"$(netavark_chains)"
  [ -n "$(netavark_chains)" ] || { rm -f "$HOSTMARK/netavark-chains"; log "deleted netavark's iptables chains"; }
fi

if [ -f "$HOSTMARK/ip_forward" ]; then
  orig=$(<"$HOSTMARK/ip_forward")
  if [ "$orig" != "$(cat /proc/sys/net/ipv4/ip_forward)" ]; then
    echo "$orig" >/proc/sys/net/ipv4/ip_forward && log "restored net.ipv4.ip_forward=$orig"
  fi
  rm -f "$HOSTMARK/ip_forward"
fi

# dirs and cgroup parents that did not exist before up: remove what is left of them if empty
for d in "${HOST_DIRS[@]}"; do
  mk=$(marker_of dir "$d")
  [ -e "$mk" ] || continue
  if [ -e "$d" ]; then
    case $d in
      /var/lib/containers) rm -f "$d/cache/blob-info-cache-v1.boltdb" ;; # skopeo's, as root
      /run/mount) find "$d" -maxdepth 1 -type f -empty -delete ;;         # util-linux utab
    esac
    find "$d" -mindepth 1 -depth -type d -empty -delete 2>/dev/null || true
    if [ -z "$(ls -A "$d" 2>/dev/null)" ]; then
      if mountpoint -q "$d"; then umount "$d" 2>/dev/null || true; fi
      rmdir "$d" 2>/dev/null || true
    fi
  fi
  [ -e "$d" ] || rm -f "$mk"
done
for cg in "${CGROUP_PARENTS[@]}"; do
  mk=$(marker_of cgroup "/$cg")
  [ -e "$mk" ] || continue
  left=0
  for m in $(cgroup_mounts); do
    [ -d "$m/$cg" ] || continue
    find "$m/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ ! -d "$m/$cg" ] || left=1
  done
  [ "$left" = 1 ] || rm -f "$mk"
done

# ------------------------------------------------------------------ purge
if [ "$PURGE" = 1 ] && [ "$HAVE_STATE" = 1 ]; then
  [ -z "$(mounts_under_state)" ] || die "not purging: mounts remain under $STATE"
  rm -rf --one-file-system "$STATE"/containerd/{root,state,tmp,opt,runc,crun} "$STATE"/docker/{root,exec} \
    "$PM"/{storage,run,tmp,ipam,events.log} "$STATE"/registry/data "$STATE"/auth-registry/data \
    "$STATE"/cni/ipam "$STATE"/cri-logs "$STATE"/containerd-logs "$STATE"/oci
  find "$PM/net.d" -type f ! -name "$PODMAN_NET.conflist" -delete 2>/dev/null || true
  rm -rf --one-file-system "$CUR_CTD"/{root,state,tmp,runc} "$CUR_DOCKER"/{root,exec} "$CUR"/cni/ipam \
    "$CUR"/cri-logs "$CUR"/containerd-logs "$PM5_ROOT"/var/lib/containers
  log "purged images, containers and registry data under $STATE"
fi
[ "$HAVE_STATE" = 0 ] || rm -f "$STATE/env" "$STATE/env.sh" "$STATE/env.debian12" "$STATE/env.current"
log "down"
