#!/usr/bin/env bash
# A musl-linked CPython and a root without glibc, for the Alpine-like tests
# (test/native/musl.test.ts, test/build/musl.test.ts):
#
#   $CACHE/pythons/3.13-musl/   CPython 3.13 from Debian trixie's python3.13
#                               source package (its upstream tarball), built
#                               with musl-gcc (Debian's musl-tools) as
#                               Alpine builds it: libpython3.13.so beside
#                               a python3.13 that finds it through
#                               $ORIGIN, installed under usr/local
#                               (DESTDIR), so the same tree runs here (musl's
#                               loader /lib/ld-musl-x86_64.so.1 comes with
#                               musl-tools) and inside the root below
#   $CACHE/musl/root/           Debian's busybox-static and musl packages
#                               (dpkg-deb -x), the busybox applets linked into
#                               /bin, and the interpreter above copied in: a
#                               root where no glibc exists at all
#
# Sourced by prepare.sh (its mirror, log and need helpers), or run alone:
#   bash scripts/test-pythons/prepare.sh --only musl
# apt runs on its own private configuration under $CACHE/apt-musl (sources
# list, lists, archives, an empty dpkg status): the machine's apt sources
# and package state are never touched. Each part is skipped when its stamp
# names the same source tarball and package versions.

apt_musl() { apt_in "$CACHE/apt-musl" amd64 apt-get "$@"; }

# The interpreter: configure + make with CC=musl-gcc. musl-gcc's spec file
# drops /usr/include and glibc's libraries, so nothing of glibc can leak in;
# modules whose libraries have no musl build here (zlib, ssl, ffi, ...) are
# simply not built, which the readers' targets do not need.
build_musl_python() {
  local prefix=$PYTHONS/3.13-musl want=$1 work src began
  if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$want" ] && [ -x "$prefix/usr/local/bin/python3.13" ]; then
    log "3.13-musl up to date ($want)"
    return
  fi
  work=$(mktemp -d "$CACHE/build-musl.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  (cd "$work" && apt_musl source --download-only python3.13/trixie >/dev/null) &&
    mkdir -p "$work/src" && tar -xf "$work/$want" -C "$work/src" --strip-components=1 || {
    log "could not fetch or unpack trixie's python3.13 source package"
    return 1
  }
  src=$work/src
  # gcc under musl-gcc's specs still answers --print-multiarch with
  # x86_64-linux-gnu, which configure finds at odds with the musl triplet
  # it detects and stops; Alpine's gcc answers nothing, as this wrapper does.
  printf '#!/bin/sh\n[ "$*" = --print-multiarch ] && exit 0\nexec musl-gcc "$@"\n' >"$work/cc" && chmod 755 "$work/cc"
  began=$(date +%s)
  log "building CPython 3.13 with musl-gcc from $want (configure + make -j$(nproc); a few minutes)"
  rm -rf "$prefix.tmp"
  # PKG_CONFIG_LIBDIR: the host's .pc files describe glibc builds.
  (cd "$src" && PKG_CONFIG_LIBDIR=/nonexistent ./configure -q CC="$work/cc" --prefix=/usr/local --enable-shared \
      --without-ensurepip --with-lto=no >"$work/configure.log" 2>&1 &&
    make -s -j"$(nproc)" >"$work/make.log" 2>&1 &&
    make -s install DESTDIR="$prefix.tmp" >"$work/install.log" 2>&1) || {
    log "building 3.13-musl failed; the last lines of its logs:"
    tail -n 20 "$work"/*.log
    rm -rf "$prefix.tmp"
    return 1
  }
  # $ORIGIN set afterwards: through configure and make's shell it is lost.
  patchelf --set-rpath '$ORIGIN/../lib' "$prefix.tmp/usr/local/bin/python3.13" || return 1
  ln -s python3.13 "$prefix.tmp/usr/local/bin/python3" 2>/dev/null || true
  if ! "$prefix.tmp/usr/local/bin/python3.13" -c 'import threading, json, asyncio' >"$work/check.log" 2>&1; then
    log "the musl python3.13 does not run:"
    cat "$work/check.log"
    rm -rf "$prefix.tmp"
    return 1
  fi
  # Nothing but musl's loader may be asked for.
  if readelf -d "$prefix.tmp/usr/local/bin/python3.13" "$prefix.tmp"/usr/local/lib/libpython3.13.so.1.0 |
    grep NEEDED | grep -v -e 'libc\.so' -e 'libpython3\.13\.so'; then
    log "3.13-musl needs a library besides musl's libc (above); refusing it"
    rm -rf "$prefix.tmp"
    return 1
  fi
  rm -rf "$prefix" && mv "$prefix.tmp" "$prefix"
  echo "$want" >"$prefix/.stamp"
  log "ready in $(($(date +%s) - began)) s: $("$prefix/usr/local/bin/python3.13" -c 'import sys, platform; print(sys.version.split()[0], platform.libc_ver())') at $prefix/usr/local/bin/python3.13"
}

# The root: busybox (static) for sh, wget, sha256sum, gzip, tar; musl's
# libc.so (which is also its loader); the interpreter.
build_musl_root() {
  local root=$CACHE/musl/root dir=$CACHE/apt-musl want=$1 applet
  if [ -f "$root/.stamp" ] && [ "$(cat "$root/.stamp")" = "$want" ]; then
    log "musl root up to date ($(echo "$want" | tr '\n' ' '))"
    return
  fi
  rm -f "$dir"/cache/archives/*.deb
  (cd "$dir/cache/archives" && apt_musl download busybox-static musl >/dev/null) || {
    log "could not fetch busybox-static and musl"
    return 1
  }
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  for deb in "$dir"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$root.tmp" || return 1; done
  mkdir -p "$root.tmp/bin" "$root.tmp/tmp" "$root.tmp/proc" "$root.tmp/dev" "$root.tmp/etc" "$root.tmp/usr/bin"
  chmod 1777 "$root.tmp/tmp"
  # The device nodes a shell and Node open (as debootstrap makes them).
  mknod -m 666 "$root.tmp/dev/null" c 1 3 && mknod -m 666 "$root.tmp/dev/zero" c 1 5 &&
    mknod -m 666 "$root.tmp/dev/full" c 1 7 && mknod -m 666 "$root.tmp/dev/random" c 1 8 &&
    mknod -m 666 "$root.tmp/dev/urandom" c 1 9 && mknod -m 666 "$root.tmp/dev/tty" c 5 0 || return 1
  for applet in $("$root.tmp/bin/busybox" --list); do
    [ -e "$root.tmp/bin/$applet" ] || ln -s busybox "$root.tmp/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root.tmp/etc/passwd"
  printf 'root:x:0:\n' >"$root.tmp/etc/group"
  cp -a "$PYTHONS/3.13-musl/usr" "$root.tmp/"
  # musl's own default search path has /usr/local/lib; Debian's musl
  # package replaces it with this file. $ORIGIN alone would need /proc.
  echo /usr/local/lib >>"$root.tmp/etc/ld-musl-x86_64.path"
  # What the tests rely on: no glibc loader or libc anywhere in the root.
  if find "$root.tmp" -name 'ld-linux*' -o -name 'libc.so.6' | grep -q .; then
    log "the musl root holds glibc files; refusing it"
    return 1
  fi
  if ! chroot "$root.tmp" /usr/local/bin/python3 -c 'import threading' || ! chroot "$root.tmp" /bin/sh -c 'wget --help' >/dev/null 2>&1; then
    log "python3 or busybox's wget does not run in the musl root"
    return 1
  fi
  rm -rf "$root" && mv "$root.tmp" "$root"
  echo "$want" >"$root/.stamp"
  log "ready: musl root at $root ($(chroot "$root" /usr/local/bin/python3 -c 'import sys; print(sys.version.split()[0])'), busybox $(chroot "$root" /bin/busybox | head -n1 | cut -d' ' -f2))"
}

prepare_musl() {
  local dir=$CACHE/apt-musl codename m src pkgs
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  m=$(mirror)
  need musl-gcc:musl-tools readelf:binutils patchelf:patchelf
  apt_dirs "$dir"
  cat >"$dir/sources.list" <<EOF
deb [arch=amd64 signed-by=$keyring] $m $codename main
deb-src [signed-by=$keyring] $m trixie main
EOF
  log "private apt configuration for $codename amd64 and trixie's sources from $m"
  apt_musl update >/dev/null || { log "apt-get update (musl) failed"; return 1; }
  src=$(apt_musl source --print-uris python3.13/trixie 2>/dev/null | grep -o "python3.13_[^' ]*orig.tar.xz" | head -n1)
  [ -n "$src" ] || { log "trixie's python3.13 source package is not listed by the mirror; 3.13-musl not prepared"; return 1; }
  build_musl_python "$src" || return 1
  # recipe= changes when the root is assembled differently.
  pkgs=$(apt_candidates "$CACHE/apt-musl" amd64 busybox-static musl; echo "python=$src"; echo "recipe=2")
  build_musl_root "$pkgs"
}
