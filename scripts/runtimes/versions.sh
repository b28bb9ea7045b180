# shellcheck shell=bash disable=SC2034
# The daemon sets the harness can run, with every version pinned here and nowhere else.
#
#   debian12  Debian 12's own packages, installed with apt-get: Docker Engine 20.10 (API 1.41),
#             containerd 1.6, Podman 4.3. What the first wave was built on.
#   current   what users run today, without installing anything over Debian 12's packages:
#             dockerd and containerd from Debian unstable, fetched with `apt-get download` through a
#             private sources list and unpacked with `dpkg -x` into the state folder (they run on
#             Debian 12's libc); Podman 5 from a Debian trixie root made with debootstrap (it needs a
#             newer libc), served from a chroot. runc stays Debian 12's (unstable's needs GLIBC 2.38).

# Debian unstable packages for the current set: exact versions, so a moving archive fails loudly.
CURRENT_SUITE=sid
CURRENT_DOCKER_VERSION=28.5.2+dfsg4-5 # Engine API 1.51
CURRENT_CONTAINERD_VERSION=2.1.9+ds1-5
# The Podman 5 root: the suite debootstrap builds it from, and the version it must hold.
PODMAN_ROOT_SUITE=trixie
CURRENT_PODMAN_VERSION=5.4.2+ds1-2+b2
PODMAN_ROOT_PACKAGES=podman,conmon,runc,catatonit,netavark,aardvark-dns,iptables,ca-certificates

# The Debian mirror: the one this machine's own sources name, so the harness reaches only what the
# machine already trusts.
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
    /etc/apt/sources.list 2>/dev/null)
  echo "${uri:-http://deb.debian.org/debian}"
}
