# Shared by scripts/serve and scripts/test: install what a fresh Debian machine lacks.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" >&2; }

is_ci() { [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; }

# A loud SKIP line; under CI a skip is a failure.
skip() {
  printf '\n*** SKIP: %s ***\n\n' "$*" >&2
  if is_ci; then
    printf 'CI=true: a skipped prerequisite fails the run.\n' >&2
    exit 1
  fi
}

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  say "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  }
}

# The PostgreSQL client library is linked into the binary (both backends are always compiled).
ensure_libpq() {
  if pkg-config --exists libpq 2>/dev/null || [ -e /usr/include/postgresql/libpq-fe.h ]; then
    return 0
  fi
  apt_install libpq-dev pkg-config || {
    echo "The PostgreSQL client library (Debian package libpq-dev) is missing and cannot be installed without root. Install it and run again." >&2
    exit 1
  }
}
