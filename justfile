# helio's everyday tasks; `just --list` shows them. Each is a plain cargo (or
# shell) command you can run without just.

# Run the tests (end-to-end ones run when their tools are installed).
test:
    cargo test --locked

# Run the tests with every end-to-end tool required, as CI does (see .ci/run).
e2e:
    HELIO_E2E=1 HELIO_PYTHON=target/e2e-venv/bin/python cargo test --locked

# Format and lint as CI expects.
lint:
    cargo fmt --check
    cargo clippy --all-targets --locked -- -D warnings

# Build the committed demo log into out/.
demo:
    cargo run --release -- build -c fixtures/demo.yaml out/

# Benchmark helio build against the single-core floor (gzip -dc, sha1, sha256), then helio verify,
# then 4 logs over a 50 ms network (helio's fixture server and Python's http.server), then a build into a bucket (moto on loopback: first publish and nothing new of 2,000 torrents).
bench:
    cargo bench --bench build
    HELIO_PYTHON=${HELIO_PYTHON:-target/e2e-venv/bin/python} cargo bench --bench bucket

# Hashing cost of a hybrid (v1 + v2) range next to a v1 range, and .torrent sizes.
bench-hybrid:
    cargo bench --bench hybrid

# Benchmark helio serve with wrk.
bench-serve:
    bash benches/serve.sh

# Benchmark helio mirror (cached tiles) with wrk.
bench-mirror:
    bash benches/mirror.sh

# Regenerate the committed demo log (deterministic: same bytes every time).
demo-log:
    cargo run --release --features fixture -- fixture fixtures/demo-log --size 4700 --gzip --seed 1 --origin demo.helio.invalid
