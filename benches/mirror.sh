#!/usr/bin/env bash
# Benchmarks `helio mirror` with wrk on loopback and prints a table: requests
# per second for cached whole data tiles and cached level-0 hash tiles (and
# the checkpoint), with the mirror's CPU time per request and peak RSS, plus
# how long its startup proof of the downloads took.
#
# The setup: a generated log of TILES data tiles, published by `helio build`
# in ranges of 65,536 entries, the ranges laid out as a BitTorrent client
# saves them (hard links into the log folder), `helio mirror` over them with
# a cache that holds them all; every tile is read once before measuring.
#
# Usage: benches/mirror.sh   (environment: TILES, CACHE_MB, DURATION,
#        CONNECTIONS, THREADS; CARGO_TARGET_DIR is honoured)
# Needs: cargo, wrk, curl. Everything listens on loopback only; the
# temporary folder is removed at the end.
set -euo pipefail

TILES=${TILES:-512}          # data tiles in the generated log (a multiple of 256)
CACHE_MB=${CACHE_MB:-512}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

# shellcheck source=benches/common.sh
source "$(dirname "$0")/common.sh"
bench_setup mirror.sh

tile_path() {
    if [ "$1" -lt 1000 ]; then printf %03d "$1"; else printf x%03d/%03d $(($1 / 1000)) $(($1 % 1000)); fi
}

entries=$((TILES * 256))
echo "generating a log of $entries entries…" >&2
key=$("$work/helio-fixture" fixture "$work/log" --size "$entries" | awk '/^key:/ {print $2}')
cat >"$work/helio.yaml" <<YAML
entries_per_torrent: 65536
trackers: []
logs:
  - name: bench
    log_url: $work/log
    origin: demo.helio.invalid
    key: $key
YAML
"$helio" build -q -c "$work/helio.yaml" "$work/out" >/dev/null

echo "laying the ranges out as a client saves them…" >&2
for ((start = 0; start < entries; start += 65536)); do
    range="$work/downloads/bench-L01-$start-$((start + 65536))"
    mkdir -p "$range/tile/0" "$range/tile/1" "$range/tile/data"
    printf 'LOG_URL: %s\n' "$work/log" >"$range/README.md"
    for ((n = start / 256; n < (start + 65536) / 256; n++)); do
        p=$(tile_path "$n")
        mkdir -p "$(dirname "$range/tile/0/$p")" "$(dirname "$range/tile/data/$p")"
        ln "$work/log/tile/0/$p" "$range/tile/0/$p"
        ln "$work/log/tile/data/$p" "$range/tile/data/$p"
    done
    p=$(tile_path $((start / 65536)))
    mkdir -p "$(dirname "$range/tile/1/$p")"
    ln "$work/log/tile/1/$p" "$range/tile/1/$p"
done

echo "starting helio mirror (it proves the downloads first)…" >&2
started=$(date +%s.%N)
"$helio" mirror -q "$work/downloads" --site "$work/out/bench" --key "$key" --cache-mb "$CACHE_MB" \
    --listen 127.0.0.1:0 >"$work/mirror.out" 2>&1 &
mirror_pid=$!
pids+=("$mirror_pid")
addr=$(address_in "$work/mirror.out")
startup=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
data_mb=$(du -sLm "$work/log/tile/data" | awk '{print $1}')

echo "reading every tile once…" >&2
for n in $(seq 0 $((TILES - 1))); do
    p=$(tile_path "$n")
    printf 'url = "http://%s/tile/data/%s"\noutput = /dev/null\n' "$addr" "$p"
    printf 'url = "http://%s/tile/0/%s"\noutput = /dev/null\n' "$addr" "$p"
done >"$work/warm.curl"
curl -s -f -K "$work/warm.curl"

# Random tiles of one level; LEVEL is `data` or `0`.
cat >"$work/tiles.lua" <<'LUA'
function tile_path(n)
    if n < 1000 then return string.format("%03d", n) end
    return string.format("x%03d/%03d", math.floor(n / 1000), n % 1000)
end
local tiles = tonumber(os.getenv("TILES"))
local prefix = "/tile/" .. os.getenv("LEVEL") .. "/"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
    if os.getenv("LEVEL") == "checkpoint" then return wrk.format("GET", "/checkpoint") end
    return wrk.format("GET", prefix .. tile_path(math.random(0, tiles - 1)))
end
LUA

# Prints "req/s|MiB/s|p50|p99|non-2xx|CPU ms per request" for LEVEL=$1.
measure() { LEVEL=$1 wrk_measure "$mirror_pid" "http://$addr" "$work/tiles.lua"; }

row() {
    local rps mbs p50 p99 errors cpu
    IFS='|' read -r rps mbs p50 p99 errors cpu <<<"$2"
    printf "| %-36s | %7s | %5s | %8s | %8s | %7s | %7s |\n" "$1" "$rps" "$mbs" "$p50" "$p99" "$errors" "$cpu"
}

echo "measuring…" >&2
data=$(measure data)
hash=$(measure 0)
checkpoint=$(measure checkpoint)
rss=$(awk '/^VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$mirror_pid/status")

echo
echo "helio mirror, $(nproc) cores (load average $(cut -d' ' -f1-3 /proc/loadavg)), loopback," \
    "wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $TILES data tiles ($data_mb MB), $((TILES / 256)) ranges"
echo
printf "| %-36s | %7s | %5s | %8s | %8s | %7s | %7s |\n" "cached" "req/s" "MiB/s" "p50" "p99" "non-2xx" "CPU ms"
echo "|--------------------------------------|---------|-------|----------|----------|---------|---------|"
row "whole data tiles" "$data"
row "level-0 hash tiles (8 KiB)" "$hash"
row "/checkpoint" "$checkpoint"
echo
echo "startup (proving $((TILES / 256)) ranges, $data_mb MB of data tiles): ${startup} s; peak RSS $rss"
echo "CPU ms: helio mirror's user + system time per request."
