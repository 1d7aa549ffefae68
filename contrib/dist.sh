#!/bin/sh
# Packs a helio release archive from this checkout, for the machine's own
# target (or $CARGO_BUILD_TARGET):
#
#   contrib/dist.sh OUT_DIR
#
# writes OUT_DIR/helio-<version>-<target>.tar.gz, holding the folder
# helio-<version>-<target>/ with the binary, README.md, LICENSE, the shell
# completions (completions/) and the man pages (man/), and beside it
# OUT_DIR/helio-<version>-<target>.tar.gz.sha256 (`sha256sum -c` reads it).
# It prints the archive's path.
#
# The binary is `cargo build --release --locked`'s, unless HELIO_BIN names one
# already built (the tests pass theirs). The completions and man pages are
# the binary's own output (`helio completions SHELL`, `helio man`), so the
# binary must run here. .github/workflows/release.yml runs this script once
# per target; contrib/install.sh installs what it makes.
set -eu

if [ "$#" -ne 1 ]; then
    echo "usage: contrib/dist.sh OUT_DIR" >&2
    exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)

fail() {
    echo "dist.sh: $*" >&2
    exit 1
}

if [ -n "${CARGO_BUILD_TARGET:-}" ]; then
    target=$CARGO_BUILD_TARGET
else
    target=$(rustc -vV | sed -n 's/^host: //p')
    [ -n "$target" ] || fail "cannot tell the host target from rustc -vV"
fi

if [ -n "${HELIO_BIN:-}" ]; then
    bin=$HELIO_BIN
else
    (cd "$root" && cargo build --release --locked)
    bin=${CARGO_TARGET_DIR:-$root/target}/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release/helio
fi
[ -x "$bin" ] || fail "$bin is not an executable"

# `helio 0.1.0 (736214c0a1b2 2026-12-06)`: the second word is the version,
# which must be this checkout's (Cargo.toml's first `version =` is the package's).
version=$("$bin" --version | cut -d ' ' -f 2)
declared=$(sed -n 's/^version = "\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
[ "$version" = "$declared" ] || fail "$bin is helio $version, but Cargo.toml says $declared"

name=helio-$version-$target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/$name
mkdir -p "$stage/completions" "$stage/man"

cp "$bin" "$stage/helio"
cp "$root/README.md" "$root/LICENSE" "$stage/"
"$bin" completions bash >"$stage/completions/helio.bash"
"$bin" completions zsh >"$stage/completions/_helio"
"$bin" completions fish >"$stage/completions/helio.fish"
"$bin" completions elvish >"$stage/completions/helio.elv"
"$bin" completions powershell >"$stage/completions/_helio.ps1"
"$bin" man >"$stage/man/helio.1"
for command in build serve init verify mirror logs completions man; do
    "$bin" man "$command" >"$stage/man/helio-$command.1"
done
chmod 0755 "$stage/helio"
chmod 0644 "$stage/README.md" "$stage/LICENSE" "$stage"/completions/* "$stage"/man/*

# Same bytes in, same archive out where GNU tar allows it: files owned by
# root, in name order, dated SOURCE_DATE_EPOCH, else the commit's time.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || true)}
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    set -- --sort=name --owner=0 --group=0 --numeric-owner
    [ -z "$epoch" ] || set -- "$@" --mtime=@"$epoch"
else
    set -- --uid 0 --gid 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
archive=$name.tar.gz
tar -C "$work" "$@" -cf - "$name" | gzip -n >"$out/$archive.tmp"
mv -f "$out/$archive.tmp" "$out/$archive"

if command -v sha256sum >/dev/null 2>&1; then
    digest=$(sha256sum "$out/$archive" | cut -d ' ' -f 1)
else
    digest=$(shasum -a 256 "$out/$archive" | cut -d ' ' -f 1)
fi
printf '%s  %s\n' "$digest" "$archive" >"$out/$archive.sha256"
echo "$out/$archive"
