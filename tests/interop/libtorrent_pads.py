"""libtorrent for tests/interop/pads.rs (BEP 47 pad files). Three modes:

  make SRC_DIR TORRENT_OUT ANNOUNCE_URL PIECE_LEN FLAVOR
      Makes a .torrent of the folder SRC_DIR the way libtorrent 2.0 does, with pad files:
      FLAVOR "v1" is v1-only with canonical file order and pad files (v1_only | canonical_files),
      "hybrid" is libtorrent's default (v1 + v2, pads always). Prints one JSON line
      {"pads": N, "files": N, "v2": bool} counting the `files` entries with `attr` holding `p`.

  seed TORRENT SAVE_DIR ANNOUNCE_URL TIMEOUT_SECS
      Seeds TORRENT (its data under SAVE_DIR) announcing to ANNOUNCE_URL. Prints one JSON line
      {"seeding": true, "port": N} once the data is checked and the tracker answered, then keeps
      seeding until stdin closes or TIMEOUT_SECS pass; prints a final JSON line with what it
      uploaded.

  download TORRENT SAVE_DIR ANNOUNCE_URL TIMEOUT_SECS
      Downloads TORRENT into SAVE_DIR from the peers ANNOUNCE_URL gives. Prints one JSON line:
      {"ok": true, "progress": 1.0, ...} once it is seeding (every piece passed its hash check),
      or {"ok": false, ...} with the progress and the last alerts at the deadline.

Loopback only: sessions listen on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP are off.
Run with /usr/bin/python3 (Debian's python3-libtorrent).
"""

import json
import os
import sys
import time

import libtorrent as lt

# The session settings and the seeding loop are libtorrent_transfer.py's (same directory).
from libtorrent_transfer import seed, session


def make(src, out, url, piece_len, flavor):
    src = os.path.abspath(src)
    fs = lt.file_storage()
    lt.add_files(fs, src)
    if flavor == "v1":
        flags = lt.create_torrent.v1_only | lt.create_torrent.canonical_files
    elif flavor == "hybrid":
        flags = 0
    else:
        sys.exit("unknown flavor " + flavor)
    ct = lt.create_torrent(fs, piece_len, flags=flags)
    ct.add_tracker(url)
    lt.set_piece_hashes(ct, os.path.dirname(src))
    entry = ct.generate()
    with open(out, "wb") as f:
        f.write(lt.bencode(entry))
    files = entry[b"info"][b"files"]
    pads = sum(1 for f in files if b"p" in f.get(b"attr", b""))
    print(json.dumps({
        "pads": pads,
        "files": len(files),
        "v2": b"meta version" in entry[b"info"],
    }), flush=True)


def download(torrent, save, url, timeout):
    ses = session()
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    h.replace_trackers([lt.announce_entry(url)])
    deadline = time.time() + timeout
    log, hash_failures = [], 0
    while True:
        for a in ses.pop_alerts():
            log.append(type(a).__name__ + ": " + a.message())
            if isinstance(a, lt.hash_failed_alert):
                hash_failures += 1
        st = h.status()
        if st.is_seeding:
            break
        if time.time() > deadline:
            print(json.dumps({
                "ok": False,
                "progress": st.progress,
                "pieces": sum(1 for p in st.pieces if p),
                "hash_failures": hash_failures,
                "log": log[-30:],
            }), flush=True)
            sys.exit(1)
        time.sleep(0.02)
    print(json.dumps({
        "ok": True,
        "progress": st.progress,
        "downloaded": st.total_payload_download,
        "hash_failures": hash_failures,
    }), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif mode == "seed":
        seed(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif mode == "download":
        download(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
