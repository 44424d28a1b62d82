#!/usr/bin/env bash
# Prepares the test interpreters (and the benchmark's austin) that the
# machine's own Debian release does not ship, into a cache:
#
#   $CACHE/pythons/sid/         Debian sid's python3.14, python3.15 (with their
#                               -dev headers) and austin, unpacked with sid's
#                               libc and the libraries they link, patched
#                               (patchelf) to run from there
#   $CACHE/pythons/3.13t/       a free-threaded CPython 3.13 (--disable-gil),
#                               built from Debian trixie's python3.13 source
#   $CACHE/arm64/root/          an arm64 Debian root with python3.11, for the
#                               arm64 agent under qemu (arm64-root.sh)
#   $CACHE/pythons/3.13-musl/   CPython 3.13 built with musl-gcc, and
#   $CACHE/musl/root/           a root without glibc holding it (musl.sh)
#
# CACHE is $PERISCOPE_CACHE or ~/.cache/periscope. Everything comes from the
# Debian mirror the machine's apt already uses, through a private apt
# configuration (own sources list, lists, archives and an empty dpkg status):
# the machine's apt sources and package state are never touched. A step whose
# result is already in the cache (same package versions) is skipped.
# test/helpers/pythons.ts finds what this leaves; a missing one is skipped
# there with a printed reason.
#
#   bash scripts/test-pythons/prepare.sh [--only sid|3.13t|arm64|musl]
set -euo pipefail

CACHE=${PERISCOPE_CACHE:-$HOME/.cache/periscope}
PYTHONS=$CACHE/pythons
APT=$CACHE/apt
ONLY=${2:-}
[ "${1:-}" = "--only" ] || ONLY=""
started=$(date +%s)
log() { echo "test-pythons: $*"; }

# The mirror apt already uses for Debian itself (deb822 or one-line form).
mirror() {
  local uri
  uri=$(grep -hsE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
  [ -n "$uri" ] || uri=$(grep -hsE '^deb .*/debian/? ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    head -n1 | sed -E 's/^deb (\[[^]]*\] )?([^ ]+).*/\2/')
  echo "${uri:-http://deb.debian.org/debian}"
}

# apt-get or apt-cache (TOOL) on the private configuration in DIR for ARCH:
# its own sources list, lists, archives and an empty dpkg status, so the
# machine's apt sources, architectures and package state are never touched.
apt_in() {
  local dir=$1 arch=$2 tool=$3
  shift 3
  "$tool" -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State="$dir/state" -o Dir::State::status="$dir/state/status" \
    -o Dir::Cache="$dir/cache" -o APT::Architecture="$arch" -o APT::Architectures="$arch" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q "$@"
}

# What a private configuration in DIR needs before its first update.
apt_dirs() {
  mkdir -p "$1/state/lists/partial" "$1/cache/archives/partial"
  [ -f "$1/state/status" ] || : >"$1/state/status"
}

# PACKAGE=VERSION of each package's candidate, on the private configuration in DIR for ARCH.
apt_candidates() {
  local dir=$1 arch=$2 p
  shift 2
  for p in "$@"; do apt_in "$dir" "$arch" apt-cache policy "$p" | awk -v p="$p" '/Candidate:/ {print p"="$2}'; done
}

apt_private() { apt_in "$APT" amd64 apt-get "$@"; }

apt_setup() {
  local m keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  m=$(mirror)
  apt_dirs "$APT"
  cat >"$APT/sources.list" <<EOF
deb [signed-by=$keyring] $m sid main
deb-src [signed-by=$keyring] $m sid main
deb-src [signed-by=$keyring] $m trixie main
EOF
  log "private apt configuration for sid and trixie from $m"
  apt_private update >/dev/null
}

need() {
  local missing=()
  for cmd in "$@"; do command -v "${cmd%%:*}" >/dev/null || missing+=("${cmd##*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from the machine's own Debian release"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Debian sid's binaries with the closure of what they depend on, unpacked
# into one root whose own ld.so and libraries they are patched to use.
prepare_sid() {
  local pkgs=(python3.14 python3.15 austin) root=$PYTHONS/sid stamp want
  want=$(apt_candidates "$APT" amd64 "${pkgs[@]}")
  stamp=$root/.stamp
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "sid interpreters up to date ($(echo "$want" | tr '\n' ' '))"
    return
  fi
  log "fetching $(echo "$want" | tr '\n' ' ')with their dependencies from sid"
  rm -f "$APT"/cache/archives/*.deb
  # austin's package also asks for a python3 older than 3.14, which sid no
  # longer has (the profiler binary does not use it): take austin alone and
  # resolve its libraries by name.
  apt_private install -d -y --no-install-recommends python3.14 python3.15 libsframe3 libunwind8 >/dev/null &&
    (cd "$APT/cache/archives" && apt_private download austin libpython3.14-dev libpython3.15-dev >/dev/null) || {
    log "could not fetch the sid packages (see apt's message above)"
    return 1
  }
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  for deb in "$APT"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$root.tmp" || return 1; done
  local ld=$root/usr/lib64/ld-linux-x86-64.so.2 libs=$root/usr/lib/x86_64-linux-gnu
  for exe in usr/bin/python3.14 usr/bin/python3.15 usr/bin/austin; do
    # DT_RPATH (not RUNPATH) so that extension modules loaded later resolve
    # their libraries in the root too.
    patchelf --set-interpreter "$ld" --force-rpath --set-rpath "$libs" "$root.tmp/$exe" || return 1
  done
  rm -rf "$root" && mv "$root.tmp" "$root"
  echo "$want" >"$stamp"
  for v in 3.14 3.15; do log "ready: $("$root/usr/bin/python$v" -c 'import sys; print(sys.version.split()[0])') at $root/usr/bin/python$v"; done
  log "ready: $("$root/usr/bin/austin" --version 2>&1 | head -n1) at $root/usr/bin/austin"
}

# A free-threaded 3.13 from Debian trixie's python3.13 source package (the
# upstream tarball in it; Debian's packaging patches are not needed).
prepare_313t() {
  local prefix=$PYTHONS/3.13t want src work
  want=$(apt_private source --print-uris python3.13/trixie 2>/dev/null | grep -o "python3.13_[^' ]*orig.tar.xz" | head -n1)
  [ -n "$want" ] || { log "trixie's python3.13 source package is not listed by the mirror; 3.13t not prepared"; return 1; }
  if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$want" ] && [ -x "$prefix/bin/python3.13t" ]; then
    log "3.13t up to date ($want)"
    return
  fi
  work=$(mktemp -d "$CACHE/build-313t.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && apt_private source --download-only python3.13/trixie >/dev/null) &&
    mkdir -p "$work/src" && tar -xf "$work/$want" -C "$work/src" --strip-components=1 || {
    log "could not fetch or unpack trixie's python3.13 source package"
    return 1
  }
  src=$work/src
  rm -rf "$prefix"
  log "building free-threaded CPython from $want (configure + make -j$(nproc); a few minutes)"
  (cd "$src" && ./configure -q --disable-gil --prefix="$prefix" --without-ensurepip --with-lto=no \
      >"$work/configure.log" 2>&1 && make -s -j"$(nproc)" >"$work/make.log" 2>&1 && make -s install >"$work/install.log" 2>&1) || {
    log "building 3.13t failed; the last lines of its logs:"
    tail -n 20 "$work"/*.log
    rm -rf "$prefix"
    return 1
  }
  echo "$want" >"$prefix/.stamp"
  log "ready: $("$prefix/bin/python3.13t" -c 'import sys, sysconfig; print(sys.version.split()[0], "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "WITH A GIL")') at $prefix/bin/python3.13t"
}

# shellcheck source=arm64-root.sh
. "$(dirname "$0")/arm64-root.sh"
# shellcheck source=musl.sh
. "$(dirname "$0")/musl.sh"

mkdir -p "$PYTHONS"
need patchelf:patchelf dpkg-deb:dpkg xz:xz-utils cc:build-essential make:make pkg-config:pkg-config
[ -f /usr/include/ffi.h ] || [ -f /usr/include/x86_64-linux-gnu/ffi.h ] || need "missing-ffi:libffi-dev"
# arm64 and musl have their own private configurations.
case "$ONLY" in arm64 | musl) ;; *) apt_setup ;; esac
status=0
if [ -z "$ONLY" ] || [ "$ONLY" = sid ]; then prepare_sid || status=1; fi
if [ -z "$ONLY" ] || [ "$ONLY" = 3.13t ]; then prepare_313t || status=1; fi
if [ -z "$ONLY" ] || [ "$ONLY" = arm64 ]; then prepare_arm64 || status=1; fi
if [ -z "$ONLY" ] || [ "$ONLY" = musl ]; then prepare_musl || status=1; fi
log "took $(($(date +%s) - started)) s"
exit $status
