"""libtorrent for tests/interop/transfer.rs. Two modes:

  seed TORRENT SAVE_DIR ANNOUNCE_URL TIMEOUT_SECS
      Seeds TORRENT (its data under SAVE_DIR) announcing to ANNOUNCE_URL. Prints one JSON line
      {"seeding": true, "port": N} once the data is checked and the tracker answered, then keeps
      seeding until stdin closes or TIMEOUT_SECS pass; prints a final JSON line with what it
      uploaded.

  pair TORRENT SEED_DIR LEECH_DIR TIMEOUT_SECS
      A libtorrent seeder and a libtorrent leecher (told the seeder's address directly, no
      tracker) move TORRENT over loopback with rate limits off. Prints one JSON line with the
      seconds from the leecher's start to its completion.

Loopback only: sessions listen on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP are off.
Run with /usr/bin/python3 (Debian's python3-libtorrent).
"""

import json
import select
import sys
import time

import libtorrent as lt


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "download_rate_limit": 0,
        "upload_rate_limit": 0,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.error_notification,
    })


def seed(torrent, save, url, timeout):
    ses = session()
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    h.replace_trackers([lt.announce_entry(url)])
    deadline = time.time() + timeout
    log, replied = [], False
    while time.time() < deadline:
        for a in ses.pop_alerts():
            log.append(type(a).__name__ + ": " + a.message())
            replied = replied or isinstance(a, lt.tracker_reply_alert)
        st = h.status()
        if replied and st.is_seeding:
            break
        time.sleep(0.02)
    else:
        print(json.dumps({"seeding": False, "log": log[-30:]}), flush=True)
        sys.exit(1)
    print(json.dumps({"seeding": True, "port": ses.listen_port()}), flush=True)
    while time.time() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 0.1)
        if r and not sys.stdin.readline():
            break
        ses.pop_alerts()
    st = h.status()
    print(json.dumps({"uploaded": st.total_payload_upload}), flush=True)


def pair(torrent, seed_dir, leech_dir, timeout):
    info = lt.torrent_info(torrent)
    seeder, leecher = session(), session()
    sh = seeder.add_torrent({"ti": lt.torrent_info(info), "save_path": seed_dir})
    deadline = time.time() + timeout
    while not sh.status().is_seeding:
        if time.time() > deadline:
            print(json.dumps({"ok": False, "error": "seeder never checked its data"}))
            sys.exit(1)
        seeder.pop_alerts()
        time.sleep(0.01)
    start = time.time()
    lh = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
    lh.connect_peer(("127.0.0.1", seeder.listen_port()))
    while not lh.status().is_seeding:
        if time.time() > deadline:
            st = lh.status()
            print(json.dumps({"ok": False, "error": "leecher not done", "progress": st.progress}))
            sys.exit(1)
        seeder.pop_alerts()
        leecher.pop_alerts()
        time.sleep(0.005)
    secs = time.time() - start
    print(json.dumps({"ok": True, "seconds": secs}), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "seed":
        seed(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif mode == "pair":
        pair(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
