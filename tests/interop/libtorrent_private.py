"""A private torrent moved between two libtorrent sessions, each announcing with its own user's
passkey URL to our tracker, plus an intruder session whose passkey is wrong. Prints one JSON line.

Usage: /usr/bin/python3 libtorrent_private.py TORRENT SEED_DIR LEECH_DIR SEED_URL LEECH_URL
                                              INTRUDER_URL TIMEOUT_SECS
Loopback only: sessions listen on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP are off (and a private torrent
would not use the DHT anyway). After the download, both sessions re-announce so the tracker
hears their final uploaded/downloaded totals.
"""

import json
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
        # libtorrent's SSRF mitigation refuses loopback tracker URLs whose path is not exactly
        # "/announce", which rules out passkey paths (/KEY/announce) on 127.0.0.1. Real
        # deployments are not on loopback; here the check must be off.
        "ssrf_mitigation": False,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.error_notification,
    })


def add(ses, info, save, url):
    h = ses.add_torrent({"ti": lt.torrent_info(info), "save_path": save})
    h.replace_trackers([lt.announce_entry(url)])
    return h


def main():
    torrent, seed_dir, leech_dir, seed_url, leech_url, bad_url = sys.argv[1:7]
    timeout = float(sys.argv[7])
    info = lt.torrent_info(torrent)
    seeder, leecher, intruder = session(), session(), session()
    names = {id(seeder): "S", id(leecher): "L", id(intruder): "I"}
    log, errors, replies = [], {"S": [], "L": [], "I": []}, {"S": 0, "L": 0, "I": 0}

    def pump(ses):
        who = names[id(ses)]
        for a in ses.pop_alerts():
            log.append(who + " " + type(a).__name__ + ": " + a.message())
            if isinstance(a, lt.tracker_error_alert):
                errors[who].append(a.error_message() or a.message())
            if isinstance(a, lt.tracker_reply_alert):
                replies[who] += 1

    deadline = time.time() + timeout
    sh = add(seeder, info, seed_dir, seed_url)
    while replies["S"] == 0 and time.time() < deadline:
        pump(seeder)
        time.sleep(0.02)
    lh = add(leecher, info, leech_dir, leech_url)
    ih_ = add(intruder, info, leech_dir + "-intruder", bad_url)
    while time.time() < deadline and not lh.status().is_seeding:
        for s in (seeder, leecher, intruder):
            pump(s)
        time.sleep(0.02)
    done = lh.status().is_seeding
    # Wait for the leecher's `completed` announce to be answered, then make both sessions
    # announce again so the tracker hears the final totals.
    end = time.time() + 15
    seen_l = replies["L"]
    while done and replies["L"] == seen_l and time.time() < end:
        pump(leecher)
        time.sleep(0.02)
    before = dict(replies)
    sh.force_reannounce(0)
    lh.force_reannounce(0)
    while time.time() < end and (replies["S"] == before["S"] or replies["L"] == before["L"]):
        for s in (seeder, leecher, intruder):
            pump(s)
        time.sleep(0.02)
    for s in (seeder, leecher, intruder):
        pump(s)
    print(json.dumps({
        "finished": done,
        "final_announces": replies["S"] > before["S"] and replies["L"] > before["L"],
        "seeder_uploaded": sh.status().total_payload_upload,
        "leecher_downloaded": lh.status().total_payload_download,
        "intruder_downloaded": ih_.status().total_payload_download,
        "intruder_errors": errors["I"],
        "intruder_replies": replies["I"],
        "log": log[-40:],
    }))
    sys.stdout.flush()
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
