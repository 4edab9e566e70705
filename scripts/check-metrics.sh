#!/usr/bin/env bash
# Starts swarmd on loopback port 0, sends it a few announces and scrapes, and checks its live
# /metrics with `promtool check metrics` (from Debian's prometheus package).
# Usage: scripts/check-metrics.sh [path/to/swarmd]   (default: target/debug/swarmd, built if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/swarmd}
[ -x "$bin" ] || cargo build --locked --bin swarmd
command -v promtool >/dev/null || { echo "check-metrics: promtool missing (scripts/install-deps.sh)" >&2; exit 1; }

log=$(mktemp)
SWARMD__DHT__BOOTSTRAP_NODES="[]" "$bin" serve --http-bind 127.0.0.1:0 --udp-bind 127.0.0.1:0 --dht-bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 --log-format json 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT

addr_of() {
  python3 - "$log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("message", "").startswith(sys.argv[2]) and "addr" in e:
        print(e["addr"]); break
PY
}
for _ in $(seq 1 200); do
  http=$(addr_of "http tracker listening"); admin=$(addr_of "admin listening")
  [ -n "$http" ] && [ -n "$admin" ] && break
  sleep 0.05
done
[ -n "${http:-}" ] && [ -n "${admin:-}" ] || { echo "check-metrics: swarmd did not start:"; cat "$log"; exit 1; }

ih=$(printf '%%%02X' $(seq 1 20))
for port in 6001 6002 6003; do
  curl -fsS "http://$http/announce?info_hash=$ih&peer_id=-SW0001-00000000$port&port=$port&left=$((port % 2))" >/dev/null
done
curl -fsS "http://$http/announce?info_hash=short" >/dev/null
curl -fsS "http://$http/scrape?info_hash=$ih" >/dev/null

metrics=$(curl -fsS "http://$admin/metrics")
echo "$metrics" | promtool check metrics
echo "$metrics" | grep -q '^swarmd_requests_total{action="announce",protocol="http",result="ok"} 3$'
echo "$metrics" | grep -q '^swarmd_torrents 1$'
echo "check-metrics: promtool accepts the live /metrics ($(echo "$metrics" | grep -c '^swarmd_') swarmd_ samples)"
