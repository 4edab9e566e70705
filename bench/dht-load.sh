#!/usr/bin/env bash
# Side-by-side DHT query benchmark on loopback: the swarmd DHT node vs Debian's libtorrent 2.0.8
# DHT node (python3-libtorrent, rate limits relaxed), each pinned to core 0, the load generator
# (bench/src/bin/dht-load.rs: 16 source ports, 20% ping, 40% find_node, 40% get_peers) pinned to
# core 1. Prints replies/s and node CPU microseconds per reply (user, system).
# Usage: bench/dht-load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bash scripts/install-deps.sh
cargo build --release --locked -p swarmd --bin swarmd && cargo build --release --locked -p swarmd-bench --bin dht-load
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
port_sw=17881; port_lt=17882
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }

run() { # name pid port
  local name=$1 pid=$2 port=$3
  taskset -c 1 target/release/dht-load --target "127.0.0.1:$port" --duration 2 >/dev/null
  read -r u0 s0 < <(cpu "$pid")
  out=$(taskset -c 1 target/release/dht-load --target "127.0.0.1:$port" --duration "$secs")
  read -r u1 s1 < <(cpu "$pid")
  local r rss
  r=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p')
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  awk -v n="$name" -v r="$r" -v s="$secs" -v u=$((u1-u0)) -v sy=$((s1-s0)) -v t="$tck" -v rss="$rss" -v out="$out" 'BEGIN {
    if (r == 0) { printf "%-12s no replies (%s)\n", n, out; exit }
    printf "%-12s %9.0f replies/s  user %5.2f us  sys %5.2f us  total %5.2f us per reply  peak RSS %d MiB\n",
      n, r/s, u/t*1e6/r, sy/t*1e6/r, (u+sy)/t*1e6/r, rss/1024
    printf "             (%s)\n", out }'
}

SWARMD__DHT__BOOTSTRAP_NODES="[]" SWARMD__DHT__RATE_LIMIT_PER_SEC=0 SWARMD__SERVER__WORKER_THREADS=1 \
  SWARMD__HTTP__ENABLED=false SWARMD__UDP__ENABLED=false \
  taskset -c 0 target/release/swarmd serve --dht-bind "127.0.0.1:$port_sw" --admin-bind 127.0.0.1:0 2>/dev/null &
sw=$!
taskset -c 0 /usr/bin/python3 bench/lt-dht-node.py "$port_lt" &
lt=$!
sleep 2
run swarmd "$sw" "$port_sw"
run libtorrent "$lt" "$port_lt"
