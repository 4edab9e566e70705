#!/usr/bin/env bash
# Side-by-side UDP announce benchmark on loopback: swarmd (one UDP worker thread) vs Debian's
# opentracker, each pinned to core 0, the load generator (bench/src/bin/udp-load.rs) pinned to
# core 1, same packets. Prints replies/s and server CPU microseconds per reply (user, system).
# Usage: [PACKETS=N] bench/udp-load.sh [SECONDS] [HASHES]   (needs root for opentracker's chroot)
# PACKETS: distinct pre-built announces per generator socket (4 sockets); 250000 gives ~1M peers.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; nhash=${2:-100000}
command -v opentracker >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker >/dev/null; }
cargo build --release --locked -p swarmd --bin swarmd && cargo build --release --locked -p swarmd-bench --bin udp-load
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import random; r = random.Random(7)
print('\n'.join(bytes(r.randrange(256) for _ in range(20)).hex() for _ in range($nhash)))" > "$work/hashes.txt"
cp "$work/hashes.txt" "$work/whitelist.txt"
port_sw=17969; port_ot=17970
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }

run() { # name pid port
  local name=$1 pid=$2 port=$3
  taskset -c 1 target/release/udp-load --target "127.0.0.1:$port" --duration 2 --hash-file "$work/hashes.txt" --packets "${PACKETS:-4096}" >/dev/null
  read -r u0 s0 < <(cpu "$pid")
  out=$(taskset -c 1 target/release/udp-load --target "127.0.0.1:$port" --duration "$secs" --hash-file "$work/hashes.txt" --packets "${PACKETS:-4096}")
  read -r u1 s1 < <(cpu "$pid")
  local r rss
  r=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p')
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  awk -v n="$name" -v r="$r" -v s="$secs" -v u=$((u1-u0)) -v sy=$((s1-s0)) -v t="$tck" -v rss="$rss" -v out="$out" 'BEGIN {
    printf "%-12s %9.0f replies/s  user %5.2f us  sys %5.2f us  total %5.2f us per reply  peak RSS %d MiB\n",
      n, r/s, u/t*1e6/r, sy/t*1e6/r, (u+sy)/t*1e6/r, rss/1024
    printf "             (%s)\n", out }'
}

SWARMD__UDP__WORKERS=1 SWARMD__DHT__BOOTSTRAP_NODES="[]" SWARMD__SERVER__WORKER_THREADS=1 taskset -c 0 target/release/swarmd serve \
  --udp-bind "127.0.0.1:$port_sw" --http-bind 127.0.0.1:0 --dht-bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 2>/dev/null &
sw=$!
cat > "$work/ot.conf" <<CONF
access.whitelist whitelist.txt
listen.udp.workers 1
listen.udp 127.0.0.1:$port_ot
listen.tcp 127.0.0.1:0
tracker.rootdir $work
CONF
taskset -c 0 opentracker -f "$work/ot.conf" -u nobody -d "$work" >/dev/null 2>&1 &
ot=$!
sleep 1
run swarmd "$sw" "$port_sw"
run opentracker "$ot" "$port_ot"
