#!/usr/bin/env bash
# A hers cluster across three network stacks: three network namespaces with addresses of their
# own (10.213.0.10-12), joined to this one through veth pairs on a bridge (10.213.0.1), every
# link shaped with tbf. One `hers cluster serve` per namespace from a host file of those
# addresses; `hers client` from this namespace. Checks, in order:
#   1. searches answer exactly as `hers serve` of the unsplit gallery;
#   2. writes: enrol, a duplicate refused, remove;
#   3. kill -9 of one process: the others exit within the deadline, the client gets an error;
#      restarted: the same answers, the acknowledged templates present;
#   4. a link taken down mid-query: an error within --deadline-s, never a hang; the link back,
#      the cluster serves again (restarted if it must be).
# Everything it made (namespaces, veths, bridge, qdiscs, processes) is removed when it ends.
#
#   sudo scripts/netns-cluster.sh target/release/hers /tmp/hers-netns [RATE]   # RATE: 1gbit (default), 10gbit
#
# With a fourth argument `bench`, it runs no checks: it splits WORK/g (a gallery enrolled under
# WORK/keys) into 3 shards, starts the cluster across the namespaces and runs `hers bench serve`
# from this namespace with WORK/p.parquet, full answers then compact ones, 1 and 4 clients.
#
# Needs root (CAP_NET_ADMIN); without it, says "skipped: needs CAP_NET_ADMIN" and exits 0.
set -euo pipefail

HERS=$(realpath "$1")
WORK=$2
RATE=${3:-1gbit}
MODE=${4:-check}
NET=10.213.0
NS=(hers-ns0 hers-ns1 hers-ns2)
DEADLINE=10
PIDS=()

say() { echo "netns-cluster: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

if [ "$(id -u)" != 0 ] || ! ip netns add hers-ns-probe 2>/dev/null; then
  echo "skipped: needs CAP_NET_ADMIN"
  exit 0
fi
ip netns del hers-ns-probe

stop_all() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

cleanup() {
  stop_all
  for i in 0 1 2; do
    ip netns del "${NS[$i]}" 2>/dev/null || true
    ip link del "hns$i-r" 2>/dev/null || true
  done
  ip link del hers-br 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# tbf on both ends of a veth: what leaves the namespace and what enters it.
shape() {
  local i=$1 rate=$2
  tc qdisc replace dev "hns$i-r" root tbf rate "$rate" burst 1mb latency 100ms
  ip netns exec "${NS[$i]}" tc qdisc replace dev "hns$i-n" root tbf rate "$rate" burst 1mb latency 100ms
}

ip link add hers-br type bridge
ip addr add "$NET.1/24" dev hers-br
ip link set hers-br up
for i in 0 1 2; do
  ip netns add "${NS[$i]}"
  ip link add "hns$i-r" type veth peer name "hns$i-n"
  ip link set "hns$i-n" netns "${NS[$i]}"
  ip link set "hns$i-r" master hers-br up
  ip -n "${NS[$i]}" addr add "$NET.1$i/24" dev "hns$i-n"
  ip -n "${NS[$i]}" link set "hns$i-n" up
  ip -n "${NS[$i]}" link set lo up
  shape "$i" "$RATE"
done
say "3 namespaces at $NET.10-12, links shaped to $RATE"

mkdir -p "$WORK"
cd "$WORK"
printf '%s\n' "$NET.10:7001" "$NET.11:7001" "$NET.12:7001" > hosts.txt
umask 077 && echo netns-token > tok && umask 022
URL="http://$NET.10:7878"

start_cluster() {
  for i in 0 1 2; do
    ip netns exec "${NS[$i]}" "$HERS" cluster serve c3 --process "$i" --hosts hosts.txt \
      --listen "$NET.10:7878" --token-file tok --deadline-s "$DEADLINE" > "p$i.out" 2> "p$i.log" &
    PIDS+=($!)
  done
  # Up once the front door answers /healthz with 200 (503 while shards report).
  for _ in $(seq 600); do
    if grep -q '^listening on ' p0.out && python3 -c "import urllib.request as u; u.urlopen('$URL/healthz', timeout=2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  fail "the cluster did not start: $(cat p0.log p1.log p2.log)"
}

if [ "$MODE" = bench ]; then
  rm -rf c3
  "$HERS" cluster split --gallery g --shards 3 --out c3 >/dev/null
  DEADLINE=120
  start_cluster
  for answers in --full-answers ""; do
    say "hers bench serve across 3 namespaces at $RATE ${answers:-(compact answers)}"
    "$HERS" bench serve --server "$URL" --keys keys --probes p.parquet --clients 1,4 --duration 10 --gallery g $answers
  done
  exit 0
fi

rm -rf keys g c3 ./*.parquet ./*.csv ./*.log
"$HERS" keygen --out keys 2>/dev/null
"$HERS" synth --identities 2000 --per-identity 10 --dim 16 --seed 1 --out g.parquet 2>/dev/null
"$HERS" synth --identities 16 --per-identity 4 --dim 16 --seed 2 --out p.parquet 2>/dev/null
# New templates for the writes round: probe rows under ids the gallery does not hold.
python3 - <<'EOF'
import pyarrow as pa, pyarrow.parquet as pq
t = pq.read_table("p.parquet").slice(0, 4)
pq.write_table(t.set_column(0, "id", pa.array([900000 + i for i in range(4)], pa.int64())), "new.parquet")
EOF
"$HERS" enroll --keys keys --input g.parquet --gallery g --chunks-per-segment 1 2>/dev/null
"$HERS" cluster split --gallery g --shards 3 --out c3 >/dev/null

client() { timeout $((DEADLINE * 3)) "$HERS" client --server "$URL" --retries 0 "$@"; }
search() { client search --keys keys --probes p.parquet --top-k 5 --out "$1" 2>>client.log; }

# The reference: one `hers serve` of the unsplit gallery, on loopback.
"$HERS" serve --gallery g --listen 127.0.0.1:0 > serve.out 2>serve.log &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^listening on ' serve.out && break; sleep 0.1; done
REF_URL=$(sed -n 's/^listening on //p' serve.out)
[ -n "$REF_URL" ] || fail "hers serve did not start: $(cat serve.log)"
timeout 60 "$HERS" client --server "$REF_URL" search --keys keys --probes p.parquet --top-k 5 --out ref.csv 2>/dev/null
stop_all


# 1. Same answers as one server.
start_cluster
search c1.csv || fail "search through the cluster: $(tail -3 client.log)"
cmp -s ref.csv c1.csv || fail "the cluster answered differently from hers serve"
say "1. searches across namespaces answer as hers serve"

# 2. Writes.
client --token-file tok enroll --keys keys --input new.parquet 2>>client.log || fail "enrol: $(tail -3 client.log)"
if client --token-file tok enroll --keys keys --input new.parquet 2>dup.log; then fail "a duplicate enrolment was taken"; fi
grep -q 409 dup.log || fail "a duplicate was refused without 409: $(cat dup.log)"
client --token-file tok remove --keys keys --ids 900003 2>>client.log || fail "remove: $(tail -3 client.log)"
search c2.csv || fail "search after writes"
grep -q ',900000,' c2.csv || fail "an enrolled template is missing"
if grep -q ',900003,' c2.csv; then fail "a removed template came back"; fi
say "2. enrol, duplicate refused (409), remove"

# 3. A process killed: every process exits, the client gets an error; restarted: same answers.
kill -9 "${PIDS[1]}"
t0=$(date +%s)
for i in 0 2; do
  for _ in $(seq $((DEADLINE * 20 + 100))); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${PIDS[$i]}" 2>/dev/null && fail "process $i still runs $(( $(date +%s) - t0 )) s after process 1 was killed"
done
say "3. process 1 killed: processes 0 and 2 exited after $(( $(date +%s) - t0 )) s"
rm -f c3k.csv
if search c3k.csv; then fail "a search succeeded with the cluster down"; fi
[ ! -s c3k.csv ] || fail "a partial answer was written"
stop_all
start_cluster
search c3r.csv || fail "search after restart: $(tail -3 client.log)"
cmp -s c2.csv c3r.csv || fail "the restarted cluster answered differently"
say "3. restarted: the same answers, acknowledged templates present"

# 4. A link down mid-query: shard 2's link slowed so its answer is still crossing, then cut.
shape 2 1mbit
search c4.csv & q=$!
sleep 2
ip -n "${NS[2]}" link set hns2-n down
t0=$(date +%s)
if wait $q; then fail "a search succeeded across a link that went down"; fi
took=$(( $(date +%s) - t0 ))
[ "$took" -le $((DEADLINE + 5)) ] || fail "the error took $took s (deadline $DEADLINE s)"
say "4. link down mid-query: error after $took s (deadline $DEADLINE s)"
ip -n "${NS[2]}" link set hns2-n up
shape 2 "$RATE"
served=no
for _ in 1 2 3; do
  if search c4b.csv 2>/dev/null && cmp -s c2.csv c4b.csv; then served=yes; break; fi
  sleep 2
done
if [ $served = no ]; then
  say "4. the cluster did not recover by itself: restarting it"
  stop_all
  start_cluster
  search c4b.csv || fail "search after the link came back and a restart"
  cmp -s c2.csv c4b.csv || fail "answers differ after the link came back"
  served=after-restart
fi
say "4. the link back: the cluster serves again ($served)"
echo "netns-cluster: all checks passed"
