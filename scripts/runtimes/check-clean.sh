#!/usr/bin/env bash
# Prove that down.sh left nothing of ours behind: prints every leftover and exits 1 if any.
# Checks: our daemons and any process naming the state dir or chrooted under it, mounts under the
# state dir, our bridges, netns, /var/lib/cni entries and iptables chains of our networks (CNI's, and
# netavark's when the host had none before up).
# Host changes up recorded but down could not undo are printed as notes (not failures).
#
# Usage: check-clean.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root (netns, iptables and /proc of other users)"

found=0
report() { # what lines...
  local what=$1; shift
  [ $# -gt 0 ] || return 0
  found=1
  echo "LEFT: $what:"
  printf '  %s\n' "$@"
}
lines() { [ -z "$1" ] || printf '%s\n' "$1"; }

daemons=()
for pf in "$RUN"/*.pid; do
  [ -e "$pf" ] || continue
  if alive "$pf"; then daemons+=("$(basename "$pf" .pid) (pid $(<"$pf"))"); fi
done
report "daemons started by up.sh" "${daemons[@]}"

mapfile -t x < <(lines "$(procs_mentioning_state | cut -c1-200)")
report "processes naming $STATE" "${x[@]}"

mapfile -t x < <(lines "$(procs_rooted_in_state | cut -c1-200)")
report "processes chrooted under $STATE" "${x[@]}"

mapfile -t x < <(lines "$(mounts_under_state)")
report "mounts under $STATE" "${x[@]}"

[ -e "$PODMAN_RUNDIR" ] && report "Podman run folder" "$PODMAN_RUNDIR"

bridges=()
for br in $(our_bridges); do
  bridges+=("$br $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{printf "%s ", $2}')")
done
report "bridges" "${bridges[@]}"

mapfile -t x < <(lines "$(our_run_netns)")
report "netns in /run/netns with our addresses" "${x[@]}"

mapfile -t x < <(lines "$(our_var_lib_cni)")
report "/var/lib/cni entries of ours" "${x[@]}"

mapfile -t x < <(lines "$(our_cni_chains)")
report "iptables CNI chains of ours (table chain)" "${x[@]}"

x=()
while read -r table chain num; do
  [ -n "$num" ] && x+=("$(ipt -t "$table" -S "$chain" | grep '^-A' | sed -n "${num}p") (table $table)")
done <<<"$(our_shared_cni_rules)"
report "iptables rules of ours in shared CNI chains" "${x[@]}"

if [ -e "$HOSTMARK/netavark-chains" ]; then
  mapfile -t x < <(lines "$(netavark_chains)")
  report "netavark iptables chains (table chain)" "${x[@]}"
fi

# notes: host changes up recorded (dirs, chains, cgroups, sysctl) that are still in place
notes=()
for d in "${HOST_DIRS[@]}"; do
  [ -e "$(marker_of dir "$d")" ] && [ -e "$d" ] && notes+=("$d (created while berth runtimes were up)")
done
for cg in "${CGROUP_PARENTS[@]}"; do
  [ -e "$(marker_of cgroup "/$cg")" ] && notes+=("cgroup /$cg (created while berth runtimes were up)")
done
for group in "${SHARED_GROUPS[@]}"; do
  read -r mk table chain drop <<<"$group"
  if [ -e "$HOSTMARK/$mk" ] && ipt -t "$table" -S "$chain" >/dev/null 2>&1; then
    notes+=("iptables $table chains $drop (created while berth runtimes were up)")
  fi
done
if [ -f "$HOSTMARK/ip_forward" ] && [ "$(<"$HOSTMARK/ip_forward")" != "$(cat /proc/sys/net/ipv4/ip_forward)" ]; then
  notes+=("net.ipv4.ip_forward=$(cat /proc/sys/net/ipv4/ip_forward), was $(<"$HOSTMARK/ip_forward")")
fi
[ ${#notes[@]} -eq 0 ] || printf 'note: %s\n' "${notes[@]}"

if [ "$found" = 0 ]; then
  echo "berth runtimes: clean (state dir $STATE)"
  exit 0
fi
echo "berth runtimes: NOT clean (state dir $STATE)" >&2
exit 1
