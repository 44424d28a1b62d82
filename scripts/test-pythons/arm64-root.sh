#!/usr/bin/env bash
# An arm64 Debian root for running the arm64 agent and an arm64 CPython under
# qemu's user-mode emulator (qemu-aarch64 -L ROOT), for test/build/arm64.test.ts:
#
#   $CACHE/arm64/root/    the machine's own Debian release's arm64 python3.11,
#                         libpython3.11-dev (headers, for the offsets check),
#                         libstdc++6 (the agent's Node needs it) and
#                         everything they depend on (libc6:arm64, ...),
#                         unpacked with dpkg-deb -x
#
# Sourced by prepare.sh (its mirror, log and need helpers), or run alone:
#   bash scripts/test-pythons/prepare.sh --only arm64
# Like prepare.sh, apt runs on a private configuration (its own sources
# list for arm64, lists, archives and an empty dpkg status, under
# $CACHE/apt-arm64): the machine's apt sources, architectures and package
# state are never touched. Skipped when the root holds the same versions.

apt_arm64() { apt_in "$CACHE/apt-arm64" arm64 apt-get "$@"; }

prepare_arm64() {
  local dir=$CACHE/apt-arm64 root=$CACHE/arm64/root codename m want
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg pkgs=(python3.11 libpython3.11-dev libstdc++6)
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  m=$(mirror)
  need qemu-aarch64-static:qemu-user-static
  apt_dirs "$dir"
  echo "deb [arch=arm64 signed-by=$keyring] $m $codename main" >"$dir/sources.list"
  log "private apt configuration for $codename arm64 from $m"
  apt_arm64 update >/dev/null || { log "apt-get update (arm64) failed"; return 1; }
  want=$(apt_candidates "$dir" arm64 "${pkgs[@]}")
  if [ -f "$root/.stamp" ] && [ "$(cat "$root/.stamp")" = "$want" ]; then
    log "arm64 root up to date ($(echo "$want" | tr '\n' ' '))"
    return
  fi
  log "fetching arm64 $(echo "$want" | tr '\n' ' ')with their dependencies from $codename"
  rm -f "$dir"/cache/archives/*.deb
  apt_arm64 install -d -y --no-install-recommends "${pkgs[@]}" >/dev/null || {
    log "could not fetch the arm64 packages (see apt's message above)"
    return 1
  }
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  for deb in "$dir"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$root.tmp" || return 1; done
  # Debian's usrmerge links (/lib -> usr/lib) come from base-files, which
  # python does not pull in: qemu -L looks for /lib/ld-linux-aarch64.so.1.
  for d in lib bin sbin; do [ -e "$root.tmp/$d" ] || ln -s "usr/$d" "$root.tmp/$d"; done
  rm -rf "$root" && mv "$root.tmp" "$root"
  echo "$want" >"$root/.stamp"
  log "ready: arm64 $(qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" -c 'import platform, sys; print(sys.version.split()[0], platform.machine())') at $root/usr/bin/python3.11"
}
