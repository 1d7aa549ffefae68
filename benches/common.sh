# What benches/serve.sh and benches/mirror.sh share; sourced, not run.
#
# `bench_setup NAME TOOL…` checks the tools, makes the temporary folder
# $work (removed on exit, with every process whose pid is in $pids), and
# builds the two binaries: $work/helio-fixture (with the `fixture` feature:
# the log generator and its server, test support) and $helio, the product
# binary under test. `address_in FILE [SCHEME]` waits for "listening on
# SCHEME://ADDR" in FILE; `wrk_measure PID URL SCRIPT` runs wrk and prints
# "req/s|MiB/s|p50|p99|non-2xx|CPU ms per request" for the process PID.

bench_setup() {
    bench_name=$1
    shift
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    for tool in cargo wrk curl "$@"; do
        command -v "$tool" >/dev/null || { echo "$bench_name: $tool is not installed" >&2; exit 2; }
    done
    work=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
    echo "building release…" >&2
    target="${CARGO_TARGET_DIR:-$root/target}"
    (cd "$root" && cargo build --release --locked --quiet --features fixture)
    cp "$target/release/helio" "$work/helio-fixture"
    (cd "$root" && cargo build --release --locked --quiet)
    helio="$target/release/helio"
}

bench_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}

# Waits for "listening on SCHEME://ADDR" in a file ($2: http or https,
# default http) and prints ADDR.
address_in() {
    local scheme=${2:-http} addr
    for _ in $(seq 2400); do
        addr=$(grep -o "listening on $scheme://[0-9.:]*" "$1" 2>/dev/null | head -1 || true)
        if [ -n "$addr" ]; then
            echo "${addr#listening on "$scheme"://}"
            return
        fi
        sleep 0.05
    done
    echo "$bench_name: nothing listened:" >&2
    cat "$1" >&2
    exit 1
}

# CPU time (user + system) of a process so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# Runs wrk with script $3 against URL $2 and prints
# "req/s|MiB/s|p50|p99|non-2xx|CPU ms per request", the CPU being process $1's.
# The script reads TILES, THREADS and whatever the caller puts in the
# environment.
wrk_measure() {
    local out rps mbs p50 p99 errors before requests cpu
    before=$(cpu_ticks "$1")
    out=$(TILES=$TILES THREADS=$THREADS wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" -s "$3" "$2")
    echo "$out" >>"$work/wrk.log"
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t=$(($(cpu_ticks "$1") - before)) -v n="$requests" -v hz="$ticks_per_second" \
        'BEGIN {printf "%.3f", n ? t * 1000 / hz / n : 0}')
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    mbs=$(awk '/^Transfer\/sec:/ {v = $2 + 0; if ($2 ~ /GB/) v *= 1024; else if ($2 ~ /KB/) v /= 1024; printf "%.0f", v}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {n = $5} /Socket errors/ {s = " (socket errors)"} END {printf "%d%s", n, s}' <<<"$out")
    echo "$rps|$mbs|$p50|$p99|$errors|$cpu"
}
