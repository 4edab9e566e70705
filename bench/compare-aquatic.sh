#!/usr/bin/env bash
# The issue's reference harness: aquatic's own UDP load tester (aquatic_udp_load_test 0.9.0,
# installed from crates.io into target/aquatic), with its defaults (1M torrents, 2M peers,
# connect:announce:scrape 50:50:1, one worker, 4 sockets on many loopback IPs), driving swarmd
# and then Debian's opentracker. Each server is pinned to core 0, the tester to core 1.
# opentracker's build serves only allow-listed hashes, so its list is the tester's own hashes
# (bench/src/bin/aquatic-hashes.rs reproduces the tester's fixed-seed generator). Server CPU is
# taken with `perf stat` over the same last SECS-5 seconds the tester's summary covers.
# Usage: bench/compare-aquatic.sh      (env: SECS=30). Needs root; about 2 minutes once built.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-30}; window=$((secs - 5))
if ! command -v opentracker >/dev/null || ! command -v perf >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker linux-perf >/dev/null
fi
aq=target/aquatic/bin/aquatic_udp_load_test
[ -x "$aq" ] || cargo install --locked --quiet --version 0.9.0 --root target/aquatic aquatic_udp_load_test
cargo build --release --locked -p swarmd --bin swarmd -p swarmd-bench --bin aquatic-hashes 2>&1 | tail -1
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/aquatic-hashes > "$work/whitelist.txt"; chmod 644 "$work/whitelist.txt"
sw_udp=17969; ot_udp=17979

SWARMD__UDP__WORKERS=1 SWARMD__SERVER__WORKER_THREADS=1 SWARMD__DHT__BOOTSTRAP_NODES="[]" \
SWARMD__LOG__LEVEL=warn taskset -c 0 target/release/swarmd serve --udp-bind "127.0.0.1:$sw_udp" \
  --http-bind 127.0.0.1:0 --dht-bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 2>"$work/swarmd.log" &
sw=$!
cat > "$work/ot.conf" <<CONF
access.whitelist whitelist.txt
listen.udp.workers 1
listen.udp 127.0.0.1:$ot_udp
listen.tcp 127.0.0.1:0
tracker.rootdir $work
CONF
taskset -c 0 opentracker -f "$work/ot.conf" -u nobody -d "$work" >/dev/null 2>&1 &
ot=$!
sleep 3

declare -A R
for s in sw ot; do
  if [ $s = sw ]; then pid=$sw; port=$sw_udp; else pid=$ot; port=$ot_udp; fi
  "$aq" -p | sed -e "s/^server_address = .*/server_address = \"127.0.0.1:$port\"/" \
    -e "s/^duration = .*/duration = $secs/" -e "s/^summarize_last = .*/summarize_last = $window/" \
    > "$work/aq-$s.toml"
  (sleep 5; perf stat -e task-clock -x, -o "$work/stat-$s.txt" -p "$pid" -- sleep "$window") &
  stat=$!
  taskset -c 1 "$aq" -c "$work/aq-$s.toml" > "$work/out-$s.txt" 2>&1
  wait "$stat"
  R[$s.rate]=$(awk '/^Average responses per second/ { printf "%.0f", $NF }' "$work/out-$s.txt")
  # The summary's own lines, after its "Average responses per second".
  R[$s.ann]=$(awk '/^Average responses/ { f = 1 } f && /Announce responses/ { printf "%.0f", $NF; exit }' "$work/out-$s.txt")
  R[$s.err]=$(awk '/^Average responses/ { f = 1 } f && /Error responses/ { printf "%.0f", $NF; exit }' "$work/out-$s.txt")
  R[$s.cpu]=$(awk -F, -v n="${R[$s.rate]}" -v w="$window" '/task-clock/ { printf "%.2f", $1 * 1000 / (n * w) }' "$work/stat-$s.txt")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }
row() { printf "| %-38s | %10s | %12s | %7s |\n" "$1" "$2" "$3" "$4"; }
echo
echo "aquatic_udp_load_test 0.9.0 defaults, ${window}s summarised: swarmd vs $(dpkg-query -W -f='opentracker ${Version}' opentracker)"
row "metric" "swarmd" "opentracker" "sw/ot"
row "--------------------------------------" "----------" "------------" "-------"
row "responses/s (all kinds)" "${R[sw.rate]}" "${R[ot.rate]}" "$(ratio "${R[sw.rate]}" "${R[ot.rate]}")"
row "announce responses/s" "${R[sw.ann]}" "${R[ot.ann]}" "$(ratio "${R[sw.ann]}" "${R[ot.ann]}")"
row "server CPU us per response" "${R[sw.cpu]}" "${R[ot.cpu]}" "$(ratio "${R[sw.cpu]}" "${R[ot.cpu]}")"
row "error responses/s" "${R[sw.err]}" "${R[ot.err]}" ""
