#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package sotto needs to build, test, fuzz and benchmark.
# Idempotent: packages already present are skipped, so a warm machine pays nothing.
# Run as root (CI and the development machines are root). The npm package that
# carries the ML-KEM sources is fetched separately by scripts/fetch-pqclean.sh.
#
# --packaging: also the Debian packaging tools, which only `make deb` and
# `make install-check` need (packaging/build-deb.sh calls it so).
set -euo pipefail

PKGS=(
  pkg-config
  libsodium-dev            # curves, signatures, randomness, wiping, Argon2id
  libssl-dev               # SHA-256/512 (SHA extensions), AES-256-CBC, TLS 1.3
  libsqlite3-dev           # embedded store (server and client)
  libpq-dev                # sotto-server's PostgreSQL store (--store postgresql://...)
  postgresql               # tests only: tests/server/with_pg.sh runs the server suites on a throwaway cluster
  libhiredis-dev           # sotto-server --cluster: Redis for live connections and cross-node pushes
  redis-server             # tests only: tests/server/with_cluster.sh runs the cluster tests on a throwaway Redis
  libqrencode-dev          # QR safety codes in the terminal
  clang                    # libFuzzer targets
  libclang-rt-14-dev       # sanitizer and libFuzzer runtimes for clang
  libsignal-protocol-c-dev # TEST PEER ONLY (GPLv3): linked into test/bench binaries, never installed
  libcjson-dev             # sotto --json output; tests read the JSON known-answer vector files (ML-KEM, Signal)
  zlib1g-dev               # tests only: reads the gzipped CCTV ML-KEM modulus vectors
  sqlite3                  # tests only: the client tests play a malicious server by editing its database
  man-db                   # tests only: man -l renders each man page without warnings (ctest man_render_*)
  groff-base               #   (the formatter man-db runs)
  libncurses-dev           # sotto chat: the terminal UI (wide-character ncursesw)
  tmux                     # tests only: drives sotto chat like a person (send-keys, capture-pane)
)
if [ "${1:-}" = "--packaging" ]; then
  PKGS=(
    dpkg-dev               # dpkg-buildpackage (make deb)
    debhelper              # dh, debhelper-compat 13
    cmake
    lintian                # checks the built .debs (make install-check)
    man-db
    groff-base
    libsodium-dev libssl-dev libsqlite3-dev libqrencode-dev libcjson-dev libncurses-dev pkg-config  # Build-Depends
  )
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} Debian packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run 'make deps' as root (or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q "${missing[@]}"; then
  # A fresh machine has no package lists yet: fetch them and try again.
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
