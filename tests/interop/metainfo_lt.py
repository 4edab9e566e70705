"""Helper of tests/interop/metainfo.rs, run with /usr/bin/python3 (python3-libtorrent).

  metainfo_lt.py show FILE
      prints "<v1 info hash hex> <piece count> <file count>" as libtorrent reads FILE
  metainfo_lt.py create PATH OUT PIECE_LENGTH TRACKER
      creates a v1-only torrent of PATH with libtorrent and writes it to OUT
"""
import os
import sys

import libtorrent as lt


def show(path):
    ti = lt.torrent_info(path)
    print(ti.info_hashes().v1, ti.num_pieces(), ti.files().num_files())


def create(path, out, piece_length, tracker):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = lt.create_torrent.v1_only
    ct = lt.create_torrent(fs, int(piece_length), flags=flags)
    ct.add_tracker(tracker)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "show":
        show(sys.argv[2])
    elif cmd == "create":
        create(*sys.argv[2:6])
    else:
        sys.exit("unknown command " + cmd)
