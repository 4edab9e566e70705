#!/usr/bin/env bash
# One command, side by side: swarmd against Debian's opentracker (built whitelist-only, so the
# test hashes are written into its allow list) on loopback. Each server is pinned to core 0 (one
# UDP worker, one runtime thread for swarmd), the load generators to core 1. Phases:
#   memory  FILL peers per hash over HASHES info hashes, announced once each (default 2 x 1M)
#   udp     connect/announce/scrape mix 5:85:10 at a fixed offered load (UDP_RATE), then saturated;
#           also at `udp-floor`, a responder doing no tracker work through swarmd's I/O (recvmmsg,
#           sendmmsg): the kernel's own cost per request, and the most any tracker could answer
#   http    wrk announces, keep-alive and Connection: close (opentracker closes every connection)
#   dht     swarmd's DHT node saturated with ping/find_node/get_peers from 16 source ports
# and prints one table: requests/s, server CPU seconds per million requests, latency p99, peak
# RSS, bytes per peer, and the swarmd/opentracker ratios. Server CPU comes from /proc/PID/stat.
# The UDP and HTTP phases run ROUNDS times, alternating between the servers, and each figure is
# the median over the rounds (every round's figure goes to stderr): on a shared VM one phase of
# identical work can come out 15-20% off the next, and alternating spreads that over servers.
# Usage: bench/compare.sh        (env: SECS=4 ROUNDS=3 HASHES=1000000 FILL=2 UDP_RATE=80000)
# Needs root (apt for opentracker/wrk, and opentracker's chroot); finishes in under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-4}; rounds=${ROUNDS:-3}; nhash=${HASHES:-1000000}; fill=${FILL:-2}; udp_rate=${UDP_RATE:-80000}
if ! command -v opentracker >/dev/null || ! command -v wrk >/dev/null || ! command -v perf >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker wrk linux-perf >/dev/null
fi
cargo build --release --locked -p swarmd --bin swarmd -p swarmd-bench --bin udp-load --bin dht-load \
  --bin udp-floor 2>&1 | tail -1
t0=$(date +%s)
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import os
print('\n'.join(os.urandom(20).hex() for _ in range($nhash)))" > "$work/hashes.txt"
head -n 100000 "$work/hashes.txt" > "$work/hashes-http.txt"
cp "$work/hashes.txt" "$work/whitelist.txt"
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }          # utime + stime, clock ticks
rss() { awk "/$2/ {print \$2}" "/proc/$1/status"; }          # kB
sw_udp=17969; sw_http=17968; sw_dht=17881; sw_admin=17970; ot_udp=17979; ot_http=17978; fl_udp=17989

SWARMD__UDP__WORKERS=1 SWARMD__SERVER__WORKER_THREADS=1 SWARMD__DHT__BOOTSTRAP_NODES="[]" \
SWARMD__DHT__RATE_LIMIT_PER_SEC=0 SWARMD__LOG__LEVEL=warn \
  taskset -c 0 target/release/swarmd serve --udp-bind "127.0.0.1:$sw_udp" --http-bind "127.0.0.1:$sw_http" \
  --dht-bind "127.0.0.1:$sw_dht" --admin-bind "127.0.0.1:$sw_admin" 2>"$work/swarmd.log" &
sw=$!
cat > "$work/ot.conf" <<CONF
access.whitelist whitelist.txt
listen.udp.workers 1
listen.udp 127.0.0.1:$ot_udp
listen.tcp 127.0.0.1:$ot_http
tracker.rootdir $work
CONF
taskset -c 0 opentracker -f "$work/ot.conf" -u nobody -d "$work" >/dev/null 2>&1 &
ot=$!
taskset -c 0 target/release/udp-floor --bind "127.0.0.1:$fl_udp" 2>/dev/null &
fl=$!

udp() { taskset -c 1 target/release/udp-load --target "127.0.0.1:$1" --hash-file "$work/hashes.txt" "${@:2}"; }
# Both up (opentracker has read its allow list when it answers an allowed announce).
for port in $sw_udp $ot_udp $fl_udp; do
  for _ in $(seq 100); do
    udp "$port" --duration 1 --packets 8 --sockets 1 | grep -q 'received [1-9]' && break
  done
done

declare -A R
# measure NAME PID COMMAND...: runs the command, records replies/s, CPU s per 1M, p99, from its
# output ("received N ... p99 X us" from our generators, wrk's "Requests/sec" and "99%").
measure() {
  local name=$1 pid=$2; shift 2
  local c0 c1 out n p99 t_start t_end
  c0=$(cpu "$pid"); t_start=$(date +%s.%N)
  out=$("$@")
  t_end=$(date +%s.%N); c1=$(cpu "$pid")
  n=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p; s/^ *\([0-9]*\) requests in .*/\1/p' | head -1)
  p99=$(echo "$out" | sed -n 's/.* p99 \([0-9.]*\) us.*/\1/p; s/^ *99% *\([0-9.]*\)\(us\|ms\|s\)$/\1 \2/p' | head -1)
  R[$name.n]=$n
  # The generator's own rate (over its sending time) if it prints one; else over the wall time,
  # which includes the generator's start.
  R[$name.rate]=$(echo "$out" | sed -n 's/.* s: \([0-9]*\) replies\/s.*/\1/p; s/^Requests\/sec: *\([0-9]*\).*/\1/p' | head -1)
  [ -n "${R[$name.rate]}" ] || R[$name.rate]=$(awk -v n="$n" -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", n / (b - a) }')
  R[$name.cpu]=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$n" 'BEGIN { printf "%.2f", c / t / n * 1e6 }')
  R[$name.p99]=$(echo "$p99" | awk '{ v = $1; if ($2 == "ms") v *= 1000; if ($2 == "s") v *= 1e6; printf "%.0f", v }')
  echo "$name: server CPU ${R[$name.cpu]} us per reply; $(echo "$out" | tail -1)" >&2
}

# Memory: growth of resident memory while FILL x HASHES peers are announced, per peer.
for s in sw ot; do
  if [ $s = sw ]; then pid=$sw; port=$sw_udp; else pid=$ot; port=$ot_udp; fi
  r0=$(rss "$pid" VmRSS)
  out=$(udp "$port" --fill "$fill" --window 64 --duration 120)
  r1=$(rss "$pid" VmRSS)
  got=$(echo "$out" | sed -n 's/.*received \([0-9]*\) .*/\1/p')
  R[$s.peers]=$got
  R[$s.bpp]=$(awk -v a="$r0" -v b="$r1" -v n="$got" 'BEGIN { printf "%.1f", (b - a) * 1024 / n }')
  echo "fill $s: $out (RSS $r0 -> $r1 kB)" >&2
done

# split NAME PID COMMAND...: the share of the server's CPU spent in the kernel while the command
# runs, from cpu-clock samples (`perf record`; hardware counters are not available in these VMs).
# A separate run from the measured one, so sampling does not inflate the CPU figures.
split() {
  local name=$1 pid=$2; shift 2
  perf record -q -e cpu-clock -F 999 -p "$pid" -o "$work/$name.perf" -- sleep "$((secs / 2))" >/dev/null 2>&1 &
  local rec=$!
  "$@" >/dev/null; wait "$rec" || true
  R[$name.kshare]=$(perf report -q -i "$work/$name.perf" --stdio --sort dso -g none 2>/dev/null \
    | awk '/\[kernel/ { gsub("%", "", $1); k += $1 } END { printf "%.3f", k / 100 }')
}

# median NAME: R[NAME.rate|cpu|p99] from R[NAME.rN.*] over the rounds.
median() {
  local name=$1 m r
  for m in rate cpu p99; do
    R[$name.$m]=$(for r in $(seq "$rounds"); do echo "${R[$name.r$r.$m]:-}"; done | grep . | sort -g \
      | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
  done
}

for r in $(seq "$rounds"); do
  for k in udpfixed udpmax; do
    for s in sw ot fl; do
      case $s in sw) pid=$sw; port=$sw_udp;; ot) pid=$ot; port=$ot_udp;; fl) pid=$fl; port=$fl_udp;; esac
      if [ $k = udpfixed ]; then
        measure "$s.$k.r$r" "$pid" udp "$port" --mix 5:85:10 --rate "$udp_rate" --duration "$secs"
      else
        measure "$s.$k.r$r" "$pid" udp "$port" --mix 5:85:10 --duration "$secs"
      fi
    done
  done
done
for s in sw ot fl; do median "$s.udpfixed"; median "$s.udpmax"; done
for s in sw ot; do
  if [ $s = sw ]; then pid=$sw; port=$sw_udp; else pid=$ot; port=$ot_udp; fi
  split "$s.udpfixed" "$pid" udp "$port" --mix 5:85:10 --rate "$udp_rate" --duration "$(( (secs + 1) / 2 ))"
done
kill "$fl"

wrk_run() { # port extra-args...
  HASHES="$work/hashes-http.txt" taskset -c 1 wrk -t1 -c64 --latency -s bench/http-wrk.lua "${@:2}" "http://127.0.0.1:$1"; }
wrk_run "$sw_http" -d2s >/dev/null
wrk_run "$ot_http" -d2s >/dev/null
for r in $(seq "$rounds"); do
  for s in sw ot; do
    if [ $s = sw ]; then pid=$sw; port=$sw_http; else pid=$ot; port=$ot_http; fi
    measure "$s.httpka.r$r" "$pid" wrk_run "$port" -d"${secs}s"
    measure "$s.httpclose.r$r" "$pid" wrk_run "$port" -d"${secs}s" -H "Connection: close"
  done
done
for s in sw ot; do median "$s.httpka"; median "$s.httpclose"; done

taskset -c 1 target/release/dht-load --target "127.0.0.1:$sw_dht" --duration 2 >/dev/null
measure sw.dht "$sw" taskset -c 1 target/release/dht-load --target "127.0.0.1:$sw_dht" \
  --duration "$((secs * rounds))"

R[sw.hwm]=$(rss "$sw" VmHWM); R[ot.hwm]=$(rss "$ot" VmHWM)
R[sw.persec]=x
elapsed=$(( $(date +%s) - t0 ))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "" || b == "") print "-"; else printf "%.2fx", a / b }'; }
row() { printf "| %-44s | %12s | %12s | %8s | %10s | %8s |\n" "$1" "$2" "$3" "$4" "${5:--}" "${6:--}"; }
echo
echo "swarmd $(target/release/swarmd --version | awk '{print $2}') vs $(dpkg-query -W -f='opentracker ${Version}' opentracker 2>/dev/null) -- $nhash hashes, $(nproc) cores, medians of $rounds rounds of ${secs}s per phase, ${elapsed}s in all"
row "metric" "swarmd" "opentracker" "sw/ot" "udp floor" "floor/ot"
row "--------------------------------------------" "------------" "------------" "--------" "----------" "--------"
row "memory: bytes per peer (${fill} x $nhash peers)" "${R[sw.bpp]}" "${R[ot.bpp]}" "$(ratio "${R[sw.bpp]}" "${R[ot.bpp]}")"
row "memory: peers stored by the fill" "${R[sw.peers]}" "${R[ot.peers]}" ""
for k in udpfixed udpmax httpka httpclose; do
  case $k in
    udpfixed) label="udp mix at $udp_rate/s offered";; udpmax) label="udp mix saturated";;
    httpka) label="http keep-alive (opentracker closes anyway)";; httpclose) label="http Connection: close";;
  esac
  for m in rate cpu p99; do
    case $m in rate) what="replies/s";; cpu) what="server CPU s per 1M";; p99) what="p99 latency us";; esac
    fl_v=${R[fl.$k.$m]:-}; fl_r=""
    [ -n "$fl_v" ] && fl_r=$(ratio "$fl_v" "${R[ot.$k.$m]}")
    row "$label: $what" "${R[sw.$k.$m]}" "${R[ot.$k.$m]}" "$(ratio "${R[sw.$k.$m]}" "${R[ot.$k.$m]}")" "$fl_v" "$fl_r"
  done
  if [ "$k" = udpfixed ] && [ -n "${R[sw.$k.kshare]:-}" ] && [ -n "${R[ot.$k.kshare]:-}" ]; then
    for part in user kernel; do
      for s in sw ot; do
        R[$s.$k.$part]=$(awk -v c="${R[$s.$k.cpu]}" -v k="${R[$s.$k.kshare]}" -v p=$part \
          'BEGIN { printf "%.2f", (p == "kernel" ? k : 1 - k) * c }')
      done
      row "$label: server CPU s per 1M, $part part" "${R[sw.$k.$part]}" "${R[ot.$k.$part]}" \
        "$(ratio "${R[sw.$k.$part]}" "${R[ot.$k.$part]}")"
    done
  fi
done
row "dht queries saturated: replies/s" "${R[sw.dht.rate]}" "-" ""
row "dht: server CPU s per 1M" "${R[sw.dht.cpu]}" "-" ""
row "dht: p99 latency us" "${R[sw.dht.p99]}" "-" ""
row "peak RSS kB (whole run)" "${R[sw.hwm]}" "${R[ot.hwm]}" "$(ratio "${R[sw.hwm]}" "${R[ot.hwm]}")"
echo "(CPU s per 1M requests = server user+system CPU seconds per million replies; lower is better."
echo " Requests/s per server core = replies/s / (CPU s per 1M * replies/s / 1e6). The user and kernel"
echo " parts split that CPU by the share of perf cpu-clock samples in user space and in the kernel;"
echo " on loopback the kernel part includes delivering each reply into the generator's socket."
echo " The udp floor answers every request with an empty reply and does nothing else, through the same"
echo " recvmmsg/sendmmsg loop as swarmd: its CPU per request is the kernel's share that no tracker can"
echo " cut, and its saturated rate is the ceiling for any tracker on this machine and generator.)"
