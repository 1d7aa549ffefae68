#!/usr/bin/env bash
# Benchmarks `helio serve` with wrk on loopback and prints a table:
#   - cached 256 KiB ranges of data tiles (and 16 KiB ones, a BitTorrent block),
#   - cold full data tiles fetched from a local upstream that sends them gzip
#     (decoded and checked on the way; cache_mb 0 so that every request misses),
#   - random ranges over more tiles than a small cache holds (SMALL_CACHE_MB),
#     with its peak RSS against the bound of cache_mb + 64 MiB,
#   - cached 256 KiB ranges over HTTPS (a self-signed certificate),
#   - cached 256 KiB ranges while 8,000 idle connections are held open (from
#     250 loopback addresses, reopened as the header timeout closes them),
#   - gzip-bomb tiles (64 MiB of zeros each) through a 16 MiB cache,
# each with the server's peak RSS and its CPU time per request.
#
# Usage: benches/serve.sh   (environment: TILES, CACHE_MB, SMALL_CACHE_MB,
#        DURATION, CONNECTIONS, THREADS, IDLE, ONLY=bounded for that run
#        alone; CARGO_TARGET_DIR is honoured)
# More than 16 × `concurrency` (8) connections would see 503s on cold runs:
# that is the overload limit at work.
# Needs: cargo, wrk, curl, gzip, openssl, python3. Everything listens on
# loopback only.
set -euo pipefail

TILES=${TILES:-1024}                 # data tiles in the generated log
CACHE_MB=${CACHE_MB:-512}            # helio's default
SMALL_CACHE_MB=${SMALL_CACHE_MB:-64} # the bounded-memory run
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
IDLE=${IDLE:-8000}                   # idle connections held open

# shellcheck source=benches/common.sh
source "$(dirname "$0")/common.sh"
# The log generator and its server are test support behind the `fixture`
# feature; the server under test is the product binary, built without it.
bench_setup serve.sh gzip openssl python3

entries=$((TILES * 256))
echo "generating a log of $entries entries…" >&2
"$work/helio-fixture" fixture "$work/log" --size "$entries" --gzip >/dev/null
"$work/helio-fixture" fixture-serve "$work/log" >"$work/upstream.out" 2>&1 &
pids+=($!)
upstream=$(address_in "$work/upstream.out")

"$work/helio-fixture" fixture-serve "$work/log" --gzip-bomb 64 >"$work/bombs.out" 2>&1 &
pids+=($!)
bombs=$(address_in "$work/bombs.out")

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# Starts helio serve with a cache of $1 MiB (upstream $2, default the
# log), over HTTP and HTTPS; sets serve_pid, serve_addr and https_addr.
start_serve() {
    cat >"$work/helio-$1.yaml" <<YAML
scraper_contact_email: bench@helio.invalid
torrent_dir: out
cache_mb: $1
https_port: 8443
tls_cert: $work/cert.pem
tls_key: $work/key.pem
logs:
  - name: bench
    log_url: http://${2:-$upstream}/
YAML
    "$helio" serve -q -c "$work/helio-$1.yaml" --listen 127.0.0.1:0 --listen-https 127.0.0.1:0 \
        >"$work/serve-$1.out" 2>&1 &
    serve_pid=$!
    pids+=("$serve_pid")
    serve_addr=$(address_in "$work/serve-$1.out")
    https_addr=$(address_in "$work/serve-$1.out" https)
}

# Lua for wrk: the path of data tile n.
cat >"$work/tiles.lua" <<'LUA'
function tile_path(n)
    if n < 1000 then return string.format("%03d", n) end
    return string.format("x%03d/%03d", math.floor(n / 1000), n % 1000)
end
prefix = "/webseed/bench/bench-L01-0-1048576/tile/data/"
tiles = tonumber(os.getenv("TILES"))
LUA
# Random RANGE-byte ranges of random data tiles; every tile is over 384 KiB.
cat >"$work/ranges.lua" <<LUA
dofile("$work/tiles.lua")
local size = tonumber(os.getenv("RANGE"))
local span = 393216 - size
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
    local start = math.random(0, span)
    local range = "bytes=" .. start .. "-" .. (start + size - 1)
    return wrk.format("GET", prefix .. tile_path(math.random(0, tiles - 1)), { Range = range })
end
LUA
# Whole data tiles in turn, each wrk thread taking every THREADS-th one, so
# that no two requests in flight ask for the same tile.
cat >"$work/tiles-in-turn.lua" <<LUA
dofile("$work/tiles.lua")
local threads = tonumber(os.getenv("THREADS"))
local counter = 1
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args) nexttile = id - 1 end
function request()
    local n = nexttile
    nexttile = (nexttile + threads) % tiles
    return wrk.format("GET", prefix .. tile_path(n))
end
LUA

# Runs wrk with a script against $URL (default the HTTP address) and prints
# "req/s|MiB/s|p50|p99|non-2xx|CPU ms per request".
measure() { RANGE=${RANGE:-262144} wrk_measure "$serve_pid" "${URL:-http://$serve_addr}" "$1"; }

# Holds $IDLE connections to $1 open without a request, from 250 loopback
# addresses (so that the per-client limit lets them in), opening a new one
# whenever the server closes one. Prints "ready" once all are open.
cat >"$work/idle.py" <<'PY'
import selectors, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
target, count = (host, int(port)), int(sys.argv[2])
selector = selectors.DefaultSelector()
def connect(i):
    s = socket.socket()
    s.bind(("127.0.1.%d" % (i % 250 + 1), 0))
    s.setblocking(False)
    s.connect_ex(target)
    selector.register(s, selectors.EVENT_READ, i)
for i in range(count):
    connect(i)
print("ready", flush=True)
while True:
    for key, _ in selector.select(1):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            selector.unregister(key.fileobj)
            key.fileobj.close()
            connect(key.data)
PY

rss() { awk '/^VmHWM/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status"; }
# The bound peak RSS is held to: the cache plus 64 MiB for everything else.
bound() { echo "$(($1 + 64)) MiB"; }
statistic() { curl -s "http://$serve_addr/statistics.json" | grep -o "\"$1\": [0-9.]*" | head -1 | awk '{print $2}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.0f MiB", b / 1048576}'; }

# Fetches every data tile once, in order, over one connection.
warm() {
    local n path
    for n in $(seq 0 $((TILES - 1))); do
        if [ "$n" -lt 1000 ]; then
            path=$(printf %03d "$n")
        else
            path=$(printf x%03d/%03d $((n / 1000)) $((n % 1000)))
        fi
        printf 'url = "http://%s/webseed/bench/b/tile/data/%s"\noutput = /dev/null\n' "$serve_addr" "$path"
    done >"$work/warm.curl"
    curl -s -f -K "$work/warm.curl"
}

row() {
    local rps mbs p50 p99 errors cpu
    IFS='|' read -r rps mbs p50 p99 errors cpu <<<"$2"
    printf "| %-44s | %7s | %5s | %8s | %8s | %7s | %7s | %-26s |\n" \
        "$1" "$rps" "$mbs" "$p50" "$p99" "$errors" "$cpu" "$3"
}

if [ "${ONLY:-}" != bounded ]; then
    echo "cold: every request a miss (cache_mb 0)…" >&2
    start_serve 0
    cold=$(measure "$work/tiles-in-turn.lua")
    cold_rss=$(rss "$serve_pid")
    kill "$serve_pid"

    echo "cached: all $TILES tiles in a $CACHE_MB MiB cache…" >&2
    start_serve "$CACHE_MB"
    warm
    cached=$(mib "$(statistic bytes)")
    cached256=$(RANGE=262144 measure "$work/ranges.lua")
    cached16=$(RANGE=16384 measure "$work/ranges.lua")
    cached_rss=$(rss "$serve_pid")
    echo "cached over HTTPS…" >&2
    https256=$(URL="https://$https_addr" RANGE=262144 measure "$work/ranges.lua")
    echo "cached, with $IDLE idle connections held open…" >&2
    python3 "$work/idle.py" "$serve_addr" "$IDLE" >"$work/idle.out" 2>&1 &
    idle_pid=$!
    pids+=("$idle_pid")
    for _ in $(seq 600); do grep -q ready "$work/idle.out" && break; sleep 0.05; done
    sleep 1
    idle_open=$(statistic connections_open)
    idle256=$(RANGE=262144 measure "$work/ranges.lua")
    idle_refused=$(statistic connections_refused)
    kill "$idle_pid"
    idle_rss=$(rss "$serve_pid")
    kill "$serve_pid"

    echo "gzip bombs: 64 MiB of zeros for every data tile, cache_mb 16…" >&2
    start_serve 16 "$bombs"
    bomb_connections=30
    bomb=$(CONNECTIONS=$bomb_connections measure "$work/tiles-in-turn.lua")
    bomb_rss=$(rss "$serve_pid")
    bomb_limit=$(mib "$(statistic held_limit_bytes)")
    kill "$serve_pid"
fi

echo "bounded: random ranges of all tiles through a $SMALL_CACHE_MB MiB cache…" >&2
start_serve "$SMALL_CACHE_MB"
bounded=$(RANGE=262144 measure "$work/ranges.lua")
bounded_cached=$(mib "$(statistic bytes)")
hit_rate=$(awk -v r="$(statistic hit_rate)" 'BEGIN {printf "%.0f%%", r * 100}')
bounded_rss=$(rss "$serve_pid")
kill "$serve_pid"

tile_kib=$(($(gzip -dc "$work/log/tile/data/000" | wc -c) / 1024))
echo
echo "helio serve, $(nproc) cores, loopback, wrk -t$THREADS -c$CONNECTIONS -d$DURATION;" \
    "$TILES data tiles of ~$tile_kib KiB, sent gzip by the upstream"
echo
printf "| %-44s | %7s | %5s | %8s | %8s | %7s | %7s | %-26s |\n" \
    "scenario" "req/s" "MiB/s" "p50" "p99" "non-2xx" "CPU ms" "peak RSS (tiles cached)"
echo "|----------------------------------------------|---------|-------|----------|----------|---------|---------|----------------------------|"
if [ "${ONLY:-}" != bounded ]; then
    row "cached 256 KiB ranges of data tiles" "$cached256" "$cached_rss ($cached of $CACHE_MB; ≤ $(bound "$CACHE_MB"))"
    row "cached 16 KiB ranges of data tiles" "$cached16" "$cached_rss ($cached of $CACHE_MB; ≤ $(bound "$CACHE_MB"))"
    row "cached 256 KiB ranges over HTTPS" "$https256" "$cached_rss ($cached of $CACHE_MB)"
    row "cached 256 KiB ranges, $idle_open idle conns open" "$idle256" "$idle_rss ($idle_refused refused)"
    row "cold full data tiles from the upstream" "$cold" "$cold_rss (cache_mb 0)"
fi
row "256 KiB ranges, $hit_rate cache hits" "$bounded" "$bounded_rss ($bounded_cached of $SMALL_CACHE_MB; ≤ $(bound "$SMALL_CACHE_MB"))"
if [ "${ONLY:-}" != bounded ]; then
    row "gzip-bomb tiles, $bomb_connections connections" "$bomb" "$bomb_rss (cache_mb 16, budget $bomb_limit)"
fi
echo
echo "CPU ms: helio serve's user + system time per request. ≤: the peak RSS bound, cache_mb + 64 MiB."
within=$(awk -v r="${bounded_rss% MiB}" -v b="$((SMALL_CACHE_MB + 64))" 'BEGIN {print (r <= b) ? "within" : "OVER"}')
echo "verdict: random ranges through a $SMALL_CACHE_MB MiB cache peaked at $bounded_rss, $within cache_mb + 64 MiB"
