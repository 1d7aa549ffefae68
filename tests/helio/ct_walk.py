"""An independent static-ct-api reader, written from C2SP static-ct-api,
tlog-tiles and RFC 6962 with the Python standard library only: it shares no
code with helio.

    python3 ct_walk.py MONITORING_PREFIX

Reads the checkpoint, every data tile (the full ones and the right edge's
partial one), parses each TileLeaf, recomputes the RFC 6962 root of the leaf
hashes and compares it with the checkpoint's; also checks that every level-0
hash tile holds the leaf hashes and every level-1 tile the level-0 tiles'
subtree hashes. Prints `root ok: <size> entries` or exits non-zero.
"""

import base64
import hashlib
import sys
import urllib.request


def get(base, path):
    request = urllib.request.Request(base + path, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def tile_path(level, index, width=256):
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    path = "tile/%s/%s" % (level, "/".join(["x" + g for g in groups[:-1]] + groups[-1:]))
    return path if width == 256 else "%s.p/%d" % (path, width)


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hashes(tile, first, count):
    """Parses `count` TileLeaf records; returns their Merkle leaf hashes."""
    hashes, pos = [], 0

    def take(n):
        nonlocal pos
        if pos + n > len(tile):
            sys.exit("truncated tile at byte %d" % pos)
        pos += n
        return tile[pos - n:pos]

    def uint(n):
        return int.from_bytes(take(n), "big")

    for i in range(count):
        start = pos
        take(8)  # timestamp
        entry_type = uint(2)
        if entry_type == 1:
            take(32)  # issuer_key_hash
        elif entry_type != 0:
            sys.exit("entry %d: unknown entry type %d" % (first + i, entry_type))
        take(uint(3))  # certificate or tbs_certificate
        extensions = take(uint(2))
        timestamped_entry = tile[start:pos]
        if entry_type == 1:
            take(uint(3))  # pre_certificate
        take(uint(2))  # certificate_chain fingerprints
        # The leaf_index extension: type 0, length 5.
        if extensions[:3] != b"\x00\x00\x05" or int.from_bytes(extensions[3:8], "big") != first + i:
            sys.exit("entry %d: wrong leaf_index extension" % (first + i))
        hashes.append(sha256(b"\x00\x00\x00" + timestamped_entry))
    if pos != len(tile):
        sys.exit("%d trailing bytes after %d entries" % (len(tile) - pos, count))
    return hashes


def mth(hashes):
    """RFC 6962 section 2.1 Merkle Tree Hash over leaf hashes."""
    if len(hashes) == 0:
        return sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:]))


def main():
    base = sys.argv[1].rstrip("/") + "/"
    lines = get(base, "checkpoint").decode().split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    leaves = []
    for index in range((size + 255) // 256):
        width = min(256, size - index * 256)
        tile = get(base, tile_path("data", index, width))
        hashes = leaf_hashes(tile, index * 256, width)
        if get(base, tile_path(0, index, width)) != b"".join(hashes):
            sys.exit("%s is not the leaf hashes of its data tile" % tile_path(0, index, width))
        leaves.extend(hashes)
    level0_tiles = size // 256
    for index in range((level0_tiles + 255) // 256):
        width = min(256, level0_tiles - index * 256)
        expected = b"".join(mth(leaves[(index * 256 + j) * 256:(index * 256 + j + 1) * 256]) for j in range(width))
        if get(base, tile_path(1, index, width)) != expected:
            sys.exit("%s does not hold its level-0 tiles' hashes" % tile_path(1, index, width))
    if mth(leaves) != root:
        sys.exit("the entries' root is not the checkpoint's")
    print("root ok: %d entries" % size)


main()
