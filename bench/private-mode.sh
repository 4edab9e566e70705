#!/usr/bin/env bash
# Private mode beside public mode, in one run on loopback: the same swarmd binary started once
# with `access.mode = "public"` and once with `access.mode = "private"` (every hash allow-listed,
# USERS users, each announce carrying a random user's passkey: BEP 41 URL data over UDP,
# /KEY/announce over HTTP), each pinned to core 0 with one UDP worker and one runtime thread, the
# load generators pinned to core 1. Prints replies/s and server CPU microseconds per reply for
# UDP announces (keep-alives, and "progress" ones whose transfer counters grow each time, so
# private mode accounts every one and its flush writes them) and keep-alive HTTP announces,
# and the private/public ratios.
# Usage: bench/private-mode.sh [SECONDS] [HASHES] [USERS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; nhash=${2:-100000}; nusers=${3:-1000}
command -v wrk >/dev/null && command -v curl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk curl >/dev/null; }
cargo build --release --locked -p swarmd --bin swarmd -p swarmd-bench --bin udp-load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import random; r = random.Random(7)
print('\n'.join(bytes(r.randrange(256) for _ in range(20)).hex() for _ in range($nhash)))" > "$work/hashes.txt"
token=bench-admin-token-0123456789
udp=17969; http=17968; admin=17970
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start() { # mode
  SWARMD__ACCESS__MODE=$1 SWARMD__ACCESS__DATABASE="$work/$1.db" SWARMD__ADMIN__TOKEN=$token \
  SWARMD__UDP__WORKERS=1 SWARMD__SERVER__WORKER_THREADS=1 SWARMD__DHT__BOOTSTRAP_NODES="[]" \
    taskset -c 0 target/release/swarmd serve --udp-bind "127.0.0.1:$udp" --http-bind "127.0.0.1:$http" \
    --dht-bind 127.0.0.1:0 --admin-bind "127.0.0.1:$admin" 2>"$work/$1.log" &
  pid=$!
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null && return; sleep 0.05; done
  echo "swarmd ($1) did not become ready"; cat "$work/$1.log"; exit 1
}

measure() { # label command... ; prints "label replies/s us/reply"
  local label=$1; shift
  local c0 c1 out n
  "$@" >/dev/null   # warm-up: fills the swarms (and, in private mode, the sessions)
  c0=$(cpu "$pid"); out=$("$@"); c1=$(cpu "$pid")
  n=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p; s/^ *\([0-9]*\) requests in.*/\1/p' | head -1)
  awk -v l="$label" -v n="$n" -v s="$secs" -v c=$((c1-c0)) -v t="$tck" 'BEGIN {
    printf "%-27s %9.0f replies/s  %6.2f us server CPU per reply\n", l, n/s, c/t*1e6/n }' | tee -a "$work/results"
}

udp_load() { taskset -c 1 target/release/udp-load --target "127.0.0.1:$udp" --duration "$1" \
  --hash-file "$work/hashes.txt" --packets 16384 ${KEYS:+--passkey-file "$KEYS"} ${PROGRESS:+--progress}; }
http_load() { HASHES="$work/hashes.txt" PASSKEYS="${KEYS:-}" taskset -c 1 wrk -t1 -c64 -d"$1s" \
  -s bench/http-wrk.lua "http://127.0.0.1:$http"; }

python3 -c "
import random; r = random.Random(9)
print('\n'.join(''.join(r.choice('0123456789abcdefghijklmnopqrstuvwxyz') for _ in range(32)) for _ in range($nusers)))" > "$work/fake-keys.txt"
start public
KEYS="" measure "public  udp announce" udp_load "$secs"
KEYS="" PROGRESS=1 measure "public  udp progress" udp_load "$secs"
KEYS="" measure "public  http keepalive" http_load "$secs"
# The same passkey-carrying requests, which public mode ignores: what the longer requests and
# the passkey routing cost, apart from the private policy itself.
KEYS="$work/fake-keys.txt" measure "public+keys udp announce" udp_load "$secs"
KEYS="$work/fake-keys.txt" measure "public+keys http keepalive" http_load "$secs"
kill "$pid"; wait "$pid" 2>/dev/null || true

start private
target/release/swarmd admin --url "http://127.0.0.1:$admin" --token "$token" torrent allow --hash-file "$work/hashes.txt"
for i in $(seq "$nusers"); do
  curl -fs -H "Authorization: Bearer $token" -d "{\"name\":\"user$i\"}" "http://127.0.0.1:$admin/api/v1/users" \
    | sed -n 's/^ *"key": "\([0-9a-z]*\)".*/\1/p'
done > "$work/keys.txt"
echo "private mode: $(wc -l < "$work/hashes.txt") hashes allowed, $(wc -l < "$work/keys.txt") users"
KEYS="$work/keys.txt" measure "private udp announce" udp_load "$secs"
KEYS="$work/keys.txt" PROGRESS=1 measure "private udp progress" udp_load "$secs"
KEYS="$work/keys.txt" measure "private http keepalive" http_load "$secs"
curl -fs "http://127.0.0.1:$admin/metrics" | grep -E '^swarmd_private_(sessions|pending_records|flushes_total)' || true
kill "$pid"; wait "$pid" 2>/dev/null || true

awk '{ cpu[$1" "$2" "$3] = $(NF-5); rate[$1" "$2" "$3] = $(NF-7) } END {
  for (k in cpu) if (k ~ /^private/) { p = k; sub(/^private/, "public", p); q = k; sub(/^private/, "public+keys", q);
    printf "ratio %-16s private/public: CPU per reply %.3f, replies/s %.3f", substr(k, 9), cpu[k]/cpu[p], rate[k]/rate[p]
    if (q in cpu) printf "; private/public+keys: CPU per reply %.3f, replies/s %.3f", cpu[k]/cpu[q], rate[k]/rate[q]
    printf "\n" } }' "$work/results"
