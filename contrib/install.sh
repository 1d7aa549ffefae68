#!/bin/sh
# Installs a released helio binary (POSIX sh: dash, bash, busybox, macOS):
#
#   sh contrib/install.sh
#   HELIO_VERSION=0.1.0 HELIO_INSTALL_DIR=/usr/local/bin sh contrib/install.sh
#
# Settings, from the environment:
#   HELIO_VERSION      the release, e.g. 0.1.0 [default: latest]
#   HELIO_REPOSITORY   the GitHub repository (owner/name) whose releases to
#                      install [default: the placeholder below]
#   HELIO_BASE_URL     where releases are: the archive of version V is
#                      $HELIO_BASE_URL/vV/helio-V-TARGET.tar.gz, its SHA-256
#                      beside it as .tar.gz.sha256
#                      [default: https://github.com/$HELIO_REPOSITORY/releases/download]
#   HELIO_INSTALL_DIR  where the binary goes [default: ~/.local/bin]
#
# "latest" is the version that ${HELIO_BASE_URL%/download}/latest redirects
# to (GitHub answers .../releases/latest with .../releases/tag/vV).
#
# The archive's SHA-256 is checked against its .sha256 before anything is
# unpacked, and the binary must run here before it replaces
# HELIO_INSTALL_DIR/helio, in one rename. On any failure (a download, a
# checksum mismatch, a binary for another machine) it exits non-zero having
# installed nothing. Needs curl, tar, gzip, and sha256sum or shasum.
set -eu

# helio's home on GitHub is not fixed in this repository: set
# HELIO_REPOSITORY (or edit this line in a copy) to the repository that
# publishes the releases, e.g. the one release.yml runs in.
HELIO_REPOSITORY=${HELIO_REPOSITORY:-OWNER/helio}
HELIO_BASE_URL=${HELIO_BASE_URL:-https://github.com/$HELIO_REPOSITORY/releases/download}
HELIO_VERSION=${HELIO_VERSION:-latest}
HELIO_INSTALL_DIR=${HELIO_INSTALL_DIR:-${HOME:?HOME is not set: set HELIO_INSTALL_DIR}/.local/bin}
HELIO_BASE_URL=${HELIO_BASE_URL%/}

say() {
    printf 'helio install: %s\n' "$*" >&2
}

fail() {
    say "$*"
    exit 1
}

for tool in curl tar gzip; do
    command -v "$tool" >/dev/null 2>&1 || fail "needs $tool"
done

# Over https, never let a redirect fall back to plain http.
case $HELIO_BASE_URL in
https://*) set -- --proto =https --proto-redir =https ;;
*) set -- ;;
esac

fetch() { # URL FILE [CURL OPTION...]
    fetch_url=$1
    fetch_file=$2
    shift 2
    curl --fail --silent --show-error --location --retry 3 "$@" -o "$fetch_file" "$fetch_url"
}

if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
    fail "needs sha256sum or shasum to check the download"
fi

case $(uname -s)/$(uname -m) in
Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-gnu ;;
Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-gnu ;;
Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
*) fail "no release is built for $(uname -s) $(uname -m): build from source (cargo install --locked --path .)" ;;
esac

version=${HELIO_VERSION#v}
if [ "$version" = latest ]; then
    latest=${HELIO_BASE_URL%/download}/latest
    location=$(curl --fail --silent --show-error "$@" -o /dev/null -w '%{redirect_url}' "$latest") ||
        fail "cannot ask $latest for the latest release"
    version=${location##*/tag/v}
    [ "$version" != "$location" ] || fail "$latest did not redirect to a release tag (…/tag/vVERSION): set HELIO_VERSION"
fi
case $version in
'' | *[!0-9A-Za-z.+-]*) fail "not a version: $version" ;;
esac

name=helio-$version-$target
archive=$name.tar.gz
url=$HELIO_BASE_URL/v$version/$archive

work=$(mktemp -d 2>/dev/null || mktemp -d -t helio)
partial=
cleanup() {
    rm -rf "$work"
    if [ -n "$partial" ]; then rm -f "$partial"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

say "downloading $url"
fetch "$url" "$work/$archive" "$@" || fail "cannot download $url"
fetch "$url.sha256" "$work/$archive.sha256" "$@" || fail "cannot download $url.sha256"

expected=$(cut -d ' ' -f 1 <"$work/$archive.sha256")
case $expected in
*[!0-9a-f]*) fail "$url.sha256 does not hold a SHA-256" ;;
esac
[ "${#expected}" -eq 64 ] || fail "$url.sha256 does not hold a SHA-256"
actual=$(sha256 "$work/$archive")
[ "$actual" = "$expected" ] ||
    fail "checksum mismatch for $archive: expected $expected, got $actual; nothing installed"

tar -xzf "$work/$archive" -C "$work" || fail "cannot unpack $archive"
binary=$work/$name/helio
[ -f "$binary" ] && [ ! -L "$binary" ] || fail "$archive holds no $name/helio"
installed=$("$binary" --version) || fail "the helio in $archive does not run on this machine"

mkdir -p "$HELIO_INSTALL_DIR"
# A temporary name in the same folder, then one rename: whoever runs helio
# meanwhile gets the old binary or the new one, never half of one.
partial=$HELIO_INSTALL_DIR/.helio.install.$$
cp "$binary" "$partial"
chmod 0755 "$partial"
mv -f "$partial" "$HELIO_INSTALL_DIR/helio"
partial=

say "installed $installed ($target) as $HELIO_INSTALL_DIR/helio"
case :${PATH:-}: in
*:"$HELIO_INSTALL_DIR":*) ;;
*) say "$HELIO_INSTALL_DIR is not in PATH: add it, or run $HELIO_INSTALL_DIR/helio" ;;
esac
