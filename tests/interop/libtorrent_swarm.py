"""Two libtorrent sessions (a seeder and a leecher) that find each other only through the HTTP
tracker given on the command line, and transfer a file. Prints one JSON line with what happened.

Usage: /usr/bin/python3 libtorrent_swarm.py ANNOUNCE_URL WORKDIR TIMEOUT_SECS
Loopback only: both sessions listen on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP are off.
"""

import json
import os
import sys
import time

import libtorrent as lt


def session():
    s = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.connect_notification
        | lt.alert.category_t.peer_notification
        | lt.alert.category_t.error_notification,
    })
    return s


def main():
    url, work, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    seed_dir = os.path.join(work, "seed")
    leech_dir = os.path.join(work, "leech")
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(leech_dir, exist_ok=True)
    payload = os.urandom(512 * 1024)
    with open(os.path.join(seed_dir, "payload.bin"), "wb") as f:
        f.write(payload)

    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(seed_dir, "payload.bin"))
    ct = lt.create_torrent(fs, 16 * 1024)
    ct.add_tracker(url)
    lt.set_piece_hashes(ct, seed_dir)
    info = lt.torrent_info(ct.generate())

    seeder, leecher = session(), session()
    log = []
    peers_seen = set()
    # Tracker replies the leecher received after it finished (the reply to `completed`).
    after_done = {"finished": False, "replies": 0}

    def note(a, ses):
        log.append(("L " if ses is leecher else "S ") + type(a).__name__ + ": " + a.message())
        if ses is leecher and isinstance(a, lt.torrent_finished_alert):
            after_done["finished"] = True
        if ses is leecher and isinstance(a, lt.tracker_reply_alert) and after_done["finished"]:
            after_done["replies"] += 1
        # The leecher dials the addresses the tracker gave it; record them.
        if ses is leecher and isinstance(a, lt.peer_alert):
            ep = getattr(a, "endpoint", None) or getattr(a, "ip", None)
            if ep:
                peers_seen.add("%s:%d" % (ep[0], ep[1]))

    deadline = time.time() + timeout
    # The seeder announces first, so the leecher learns its listen address from the tracker and
    # connects out to it (the seeder hears of the leecher only at its next announce).
    sh = seeder.add_torrent({"ti": info, "save_path": seed_dir})
    seeded = False
    while not seeded and time.time() < deadline:
        for a in seeder.pop_alerts():
            note(a, seeder)
            seeded = seeded or isinstance(a, lt.tracker_reply_alert)
        time.sleep(0.02)
    lh = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})

    replies = 0
    while time.time() < deadline:
        for ses in (seeder, leecher):
            for a in ses.pop_alerts():
                note(a, ses)
                if isinstance(a, lt.tracker_reply_alert) and ses is leecher:
                    replies += 1
        for p in lh.get_peer_info():
            if p.flags & lt.peer_info.local_connection:
                peers_seen.add("%s:%d" % (p.ip[0], p.ip[1]))
        if lh.status().is_seeding:
            break
        time.sleep(0.02)
    done = lh.status().is_seeding
    # On finishing, the leecher announces `completed`; wait for the tracker's reply to it so the
    # tracker has counted the completion before the sessions go away.
    end = time.time() + 10
    while done and after_done["replies"] == 0 and time.time() < end:
        for a in leecher.pop_alerts():
            note(a, leecher)
        time.sleep(0.02)
    got = b""
    path = os.path.join(leech_dir, "payload.bin")
    if os.path.exists(path):
        with open(path, "rb") as f:
            got = f.read()
    print(json.dumps({
        "seeder_port": seeder.listen_port(),
        "leecher_port": leecher.listen_port(),
        "info_hash": str(info.info_hash()),
        "leecher_peers": sorted(peers_seen),
        "leecher_tracker_replies": replies,
        "replies_after_done": after_done["replies"],
        "finished": done,
        "payload_matches": got == payload,
        "log": log[-40:],
    }))
    sys.stdout.flush()
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
