#!/usr/bin/env bash
# Side-by-side HTTP announce benchmark on loopback: swarmd vs Debian's opentracker, each pinned to
# core 0, wrk pinned to core 1, same request mix (bench/http-wrk.lua). Prints requests/s and
# server CPU microseconds per request (user and system, from /proc/PID/stat).
# Usage: bench/http-wrk.sh [SECONDS] [CONNECTIONS] [HASHES]   (needs root for opentracker's chroot)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}; conns=${2:-64}; nhash=${3:-10000}
command -v wrk >/dev/null && command -v opentracker >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk opentracker >/dev/null; }
[ -x target/release/swarmd ] || cargo build --release --locked --bin swarmd
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import random; r = random.Random(7)
print('\n'.join(bytes(r.randrange(256) for _ in range(20)).hex() for _ in range($nhash)))" > "$work/hashes.txt"
cp "$work/hashes.txt" "$work/whitelist.txt"
port_sw=17969; port_ot=17970

cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }   # utime stime, in clock ticks
tck=$(getconf CLK_TCK)

run() { # name pid port keepalive
  local name=$1 pid=$2 port=$3 ka=$4 hdr=()
  [ "$ka" = no ] && hdr=(-H "Connection: close")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  HASHES="$work/hashes.txt" taskset -c 1 wrk -t1 -c"$conns" -d3s -s bench/http-wrk.lua "${hdr[@]}" "http://127.0.0.1:$port" >/dev/null
  read -r u0 s0 < <(cpu "$pid")
  out=$(HASHES="$work/hashes.txt" taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -s bench/http-wrk.lua "${hdr[@]}" "http://127.0.0.1:$port")
  read -r u1 s1 < <(cpu "$pid")
  local reqs rss
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  awk -v n="$name" -v ka="$ka" -v r="$reqs" -v s="$secs" -v u=$((u1-u0)) -v sy=$((s1-s0)) -v t="$tck" -v rss="$rss" 'BEGIN {
    printf "%-12s keepalive=%-3s %9.0f req/s  user %6.2f us/req  sys %6.2f us/req  total %6.2f us/req  peak RSS %d MiB\n",
      n, ka, r/s, u/t*1e6/r, sy/t*1e6/r, (u+sy)/t*1e6/r, rss/1024 }'
}

SWARMD__DHT__BOOTSTRAP_NODES="[]" SWARMD__SERVER__WORKER_THREADS=1 taskset -c 0 target/release/swarmd serve \
  --http-bind "127.0.0.1:$port_sw" --udp-bind 127.0.0.1:0 --dht-bind 127.0.0.1:0 --admin-bind 127.0.0.1:0 2>/dev/null &
sw=$!
cat > "$work/ot.conf" <<CONF
listen.tcp 127.0.0.1:$port_ot
access.whitelist whitelist.txt
tracker.rootdir $work
CONF
taskset -c 0 opentracker -f "$work/ot.conf" -u nobody -d "$work" >/dev/null 2>&1 &
ot=$!
for ka in yes no; do
  run swarmd "$sw" "$port_sw" "$ka"
  run opentracker "$ot" "$port_ot" "$ka"
done
