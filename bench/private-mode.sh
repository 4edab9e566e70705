#!/usr/bin/env bash
# Private mode beside public mode, in one run on loopback: the same swarmd binary started twice,
# at once, with `access.mode = "public"` and with `access.mode = "private"` (every hash
# allow-listed, USERS users, each announce carrying a random user's passkey: BEP 41 URL data
# over UDP, /KEY/announce over HTTP), both pinned to core 0 with one UDP worker and one runtime
# thread, the load generators pinned to core 1. Only one server is loaded at a time; the phases
# alternate between the modes for ROUNDS rounds, so a burst of noise on the machine (another
# tenant, a build) hits one round, not one mode, and the figures printed are each phase's median
# over the rounds. Phases: UDP announces (keep-alives; "progress" ones whose transfer counters
# grow each time, so private mode accounts every one and its flush writes them) and keep-alive
# HTTP announces; public mode also gets the same passkey-carrying requests ("public+keys"),
# which it ignores. Prints both servers' resident memory after the warm-up, replies/s and
# server CPU microseconds per reply, and the private/public ratios. The UDP generator polls for replies (`udp-load --spin`), so the
# server's replies never pay for waking it, as a remote client's would not (SPIN=0 turns that
# off). Besides the ratios of the medians it prints the ratios round by round (each private
# phase against the public one just before it): their median and range. With FILL=N, it then
# announces N more peers on every hash to both servers and prints their resident memory
# (both servers then return freed memory to the system at once: take ratios from other runs).
# Usage: [FILL=N] bench/private-mode.sh [SECONDS] [HASHES] [USERS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-6}; nhash=${2:-100000}; nusers=${3:-1000}; rounds=${4:-3}
spin=--spin; [ "${SPIN:-1}" = 0 ] && spin=
command -v wrk >/dev/null && command -v curl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk curl >/dev/null; }
cargo build --release --locked -p swarmd --bin swarmd -p swarmd-bench --bin udp-load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import random; r = random.Random(7)
print('\n'.join(bytes(r.randrange(256) for _ in range(20)).hex() for _ in range($nhash)))" > "$work/hashes.txt"
python3 -c "
import random; r = random.Random(9)
print('\n'.join(''.join(r.choice('0123456789abcdefghijklmnopqrstuvwxyz') for _ in range(32)) for _ in range($nusers)))" > "$work/fake-keys.txt"
token=bench-admin-token-0123456789
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A pid udp http admin
udp[public]=17969; http[public]=17968; admin[public]=17970
udp[private]=18969; http[private]=18968; admin[private]=18970

# With FILL, the allocator hands freed memory back at once, so resident memory is what is
# live (this costs some speed: take the ratios from a run without FILL).
[ "${FILL:-0}" -gt 0 ] && export _RJEM_MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0
start() { # mode
  SWARMD__ACCESS__MODE=$1 SWARMD__ACCESS__DATABASE="$work/$1.db" SWARMD__ADMIN__TOKEN=$token \
  SWARMD__UDP__WORKERS=1 SWARMD__SERVER__WORKER_THREADS=1 SWARMD__DHT__BOOTSTRAP_NODES="[]" \
    taskset -c 0 target/release/swarmd serve --udp-bind "127.0.0.1:${udp[$1]}" \
    --http-bind "127.0.0.1:${http[$1]}" --dht-bind 127.0.0.1:0 --admin-bind "127.0.0.1:${admin[$1]}" \
    2>"$work/$1.log" &
  pid[$1]=$!
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:${admin[$1]}/readyz" >/dev/null && return; sleep 0.05; done
  echo "swarmd ($1) did not become ready"; cat "$work/$1.log"; exit 1
}

udp_load() { # mode seconds
  taskset -c 1 target/release/udp-load --target "127.0.0.1:${udp[$1]}" --duration "$2" \
    --hash-file "$work/hashes.txt" --packets 16384 ${KEYS:+--passkey-file "$KEYS"} ${PROGRESS:+--progress} $spin; }
http_load() { # mode seconds
  HASHES="$work/hashes.txt" PASSKEYS="${KEYS:-}" taskset -c 1 wrk -t1 -c64 -d"$2s" \
    -s bench/http-wrk.lua "http://127.0.0.1:${http[$1]}"; }

measure() { # label mode command ; appends "label replies/s us/reply" to the raw results
  local label=$1 mode=$2 cmd=$3 c0 c1 out n
  c0=$(cpu "${pid[$mode]}"); out=$("$cmd" "$mode" "$secs"); c1=$(cpu "${pid[$mode]}")
  n=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p; s/^ *\([0-9]*\) requests in.*/\1/p' | head -1)
  awk -v l="$label" -v n="$n" -v s="$secs" -v c=$((c1-c0)) -v t="$tck" 'BEGIN {
    printf "%s %.0f %.3f\n", l, n/s, c/t*1e6/n }' >> "$work/raw"
}

start public
start private
target/release/swarmd admin --url "http://127.0.0.1:${admin[private]}" --token "$token" \
  torrent allow --hash-file "$work/hashes.txt"
for i in $(seq "$nusers"); do
  curl -fs -H "Authorization: Bearer $token" -d "{\"name\":\"user$i\"}" \
    "http://127.0.0.1:${admin[private]}/api/v1/users" | sed -n 's/^ *"key": "\([0-9a-z]*\)".*/\1/p'
done > "$work/keys.txt"
echo "private mode: $(wc -l < "$work/hashes.txt") hashes allowed, $(wc -l < "$work/keys.txt") users;" \
  "$rounds rounds of ${secs}s phases"
# Warm-up: fills the swarms (and, in private mode, the sessions) once.
udp_load public "$secs" >/dev/null
KEYS="$work/keys.txt" udp_load private "$secs" >/dev/null
# What private mode's state costs in memory: both servers hold the same swarms now, the private
# one also its torrents, sessions, users, keys and the database's page cache. Anonymous memory
# only: the database file is mapped, and its pages are the kernel's page cache to reclaim.
rss() { awk '/^RssAnon/ { printf "%.1f", $2 / 1024 }' "/proc/${pid[$1]}/status"; }
gauge() { curl -fs "http://127.0.0.1:${admin[private]}/metrics" | awk -v g="$1" '$1 == g { print $2 }'; }
echo "resident anonymous memory after the warm-up: public $(rss public) MB, private $(rss private) MB;" \
  "$(gauge swarmd_private_sessions) sessions"
for _ in $(seq "$rounds"); do
  measure public/udp-announce public udp_load
  KEYS="$work/keys.txt" measure private/udp-announce private udp_load
  # The same passkey-carrying requests in public mode: what the longer requests and the
  # passkey routing cost, apart from the private policy itself.
  KEYS="$work/fake-keys.txt" measure public+keys/udp-announce public udp_load
  PROGRESS=1 measure public/udp-progress public udp_load
  KEYS="$work/keys.txt" PROGRESS=1 measure private/udp-progress private udp_load
  measure public/http-keepalive public http_load
  KEYS="$work/keys.txt" measure private/http-keepalive private http_load
  KEYS="$work/fake-keys.txt" measure public+keys/http-keepalive public http_load
done
curl -fs "http://127.0.0.1:${admin[private]}/metrics" \
  | grep -E '^swarmd_private_(sessions|pending_records|flushes_total)' || true
if [ "${FILL:-0}" -gt 0 ]; then
  # Memory at scale: FILL more peers on every hash, in both modes, then what each holds.
  for m in public private; do
    keys=(); [ $m = private ] && keys=(--passkey-file "$work/keys.txt")
    taskset -c 1 target/release/udp-load --target "127.0.0.1:${udp[$m]}" --duration 120 \
      --hash-file "$work/hashes.txt" --fill "$FILL" "${keys[@]}" >/dev/null
  done
  # Once the flush has written the fill (its buffers are transient), up to a minute.
  for _ in $(seq 600); do [ "$(gauge swarmd_private_pending_records)" = 0 ] && break; sleep 0.1; done
  echo "resident anonymous memory after a fill of $FILL peers per hash: public $(rss public) MB," \
    "private $(rss private) MB; $(gauge swarmd_private_sessions) sessions"
fi

# Medians per phase, then the ratios of the medians (plain POSIX awk: mawk has no asort).
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for k in $(cut -d' ' -f1 "$work/raw" | sort -u); do
  all=$(awk -v k="$k" '$1 == k { printf " %s", $3 }' "$work/raw")
  printf "%s %s %s %s\n" "$k" \
    "$(awk -v k="$k" '$1 == k { print $2 }' "$work/raw" | median)" \
    "$(awk -v k="$k" '$1 == k { print $3 }' "$work/raw" | median)" "$all"
done > "$work/medians"
awk '{ printf "%-28s %9.0f replies/s  %6.2f us server CPU per reply (median; all:", $1, $2, $3
       for (i = 4; i <= NF; i++) printf " %s", $i; printf ")\n" }' "$work/medians"
awk '{ rate[$1] = $2; cpu[$1] = $3 } END {
  for (k in cpu) if (k ~ /^private/) {
    p = k; sub(/^private/, "public", p); q = k; sub(/^private/, "public+keys", q)
    printf "ratio %-16s private/public: CPU per reply %.3f, replies/s %.3f", substr(k, 9), cpu[k]/cpu[p], rate[k]/rate[p]
    if (q in cpu) printf "; private/public+keys: CPU per reply %.3f, replies/s %.3f", cpu[k]/cpu[q], rate[k]/rate[q]
    printf "\n" } }' "$work/medians" | sort
# The same ratios round by round: each private phase against the public phase measured just
# before it, so a burst of noise that spans a round moves both sides. Median and range over
# the rounds; a range that straddles a target says one run cannot settle it.
awk '{ n[$1]++; r[$1, n[$1]] = $2; c[$1, n[$1]] = $3 } END {
  for (k in n) if (k ~ /^private/) {
    p = k; sub(/^private/, "public", p); m = 0
    for (i = 1; i <= n[k]; i++) if ((p, i) in c) { m++; cr[m] = c[k, i] / c[p, i]; rr[m] = r[k, i] / r[p, i] }
    if (m == 0) continue
    # Insertion sorts (plain POSIX awk has no asort).
    for (i = 2; i <= m; i++) for (j = i; j > 1 && cr[j - 1] > cr[j]; j--) { t = cr[j]; cr[j] = cr[j - 1]; cr[j - 1] = t }
    for (i = 2; i <= m; i++) for (j = i; j > 1 && rr[j - 1] > rr[j]; j--) { t = rr[j]; rr[j] = rr[j - 1]; rr[j - 1] = t }
    h = int((m + 1) / 2)
    printf "paired %-15s private/public by round: CPU per reply %.3f (%.3f-%.3f), replies/s %.3f (%.3f-%.3f), %d rounds\n",
      substr(k, 9), cr[h], cr[1], cr[m], rr[h], rr[1], rr[m], m } }' "$work/raw" | sort
