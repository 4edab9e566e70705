"""libtorrent for tests/interop/transfer.rs. Two modes:

  seed TORRENT SAVE_DIR ANNOUNCE_URL TIMEOUT_SECS
      Seeds TORRENT (its data under SAVE_DIR) announcing to ANNOUNCE_URL. Prints one JSON line
      {"seeding": true, "port": N} once the data is checked and the tracker answered, then keeps
      seeding until stdin closes or TIMEOUT_SECS pass; prints a final JSON line with what it
      uploaded.

  pair TORRENT SEED_DIR LEECH_DIR ANNOUNCE_URL TIMEOUT_SECS
      A libtorrent seeder and a libtorrent leecher, both configured for throughput (PERF below),
      move TORRENT over loopback; the leecher finds the seeder through the tracker at
      ANNOUNCE_URL, as a user's client would. Prints one JSON line: {"ok": true, "seconds": S,
      "synced": S2, "connect": C, "transport": "TCP", "trace": [[t, percent], ...]} where S is
      from adding the leecher's torrent to its torrent_finished_alert, S2 adds an fsync of each
      downloaded file, C is when the leecher dialled the seeder, and trace is its progress
      about every 0.25 s.

Loopback only: sessions listen on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP are off.
Run with /usr/bin/python3 (Debian's python3-libtorrent).
"""

import json
import os
import select
import sys
import time

import libtorrent as lt


def session(extra=None):
    settings = {
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
    }
    settings.update(extra or {})
    return lt.session(settings)


# Throughput settings for `pair`: what a performance-minded user would set for a fast, lossless
# link (all documented in libtorrent's settings_pack reference). Measured on this machine type
# (2 cores, 256 MiB in 256 KiB pieces over 127.0.0.1, leecher start to finished, quiet machine);
# defaults in brackets.
PERF = {
    # uTP off [on]: the decisive one. With uTP, libtorrent 2.0.8 dials the seeder over uTP
    # (peer_connect_alert says "uTP") and the transfer crawls at 5-7 MiB/s with a few short
    # bursts, 20-36 s in all: uTP's delay-based congestion control in the one user-space
    # network thread, MTU-sized packets. With TCP only (and nothing else below): 0.51-0.57 s.
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    # More bytes queued per peer socket [500 KiB high / 10 KiB low watermark], so the seeder
    # never waits on its disk reads between sends on a fast link.
    "send_buffer_watermark": 8 << 20,
    "send_buffer_low_watermark": 1 << 20,
    # More received blocks queued for the leecher's disk threads before it stops reading the
    # socket [1 MiB].
    "max_queued_disk_bytes": 16 << 20,
    # Hash pieces on both cores [1 thread]. With the three settings above: 0.41-0.42 s.
    # Also tried, no gain beyond noise: max_out_request_queue 1500 [500], 4 MiB socket
    # buffers [OS default], aio_threads 4 [10]; tick_interval 100 [500] does not make it dial
    # sooner (see start_now).
    "hashing_threads": 2,
    "alert_mask": lt.alert.category_t.status_notification
    | lt.alert.category_t.tracker_notification
    | lt.alert.category_t.connect_notification
    | lt.alert.category_t.error_notification,
}


def start_now(ti, save, url):
    """add_torrent_params that start at once: not paused, not auto-managed (an auto-managed
    torrent waits for the session's once-a-second queue pass before it starts), announcing to
    url. libtorrent dials the peers of a torrent's first tracker reply at once ("connect
    boost"); peers given any other way (connect_peer, params.peers) wait for the session's
    once-a-second tick, which costs up to a second in a transfer that takes less than one."""
    p = lt.add_torrent_params()
    p.ti = ti
    p.save_path = save
    p.trackers = [url]
    p.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    return p


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
        st = h.status()
        print(json.dumps({"seeding": False, "progress": st.progress, "log": log[-30:]}),
              flush=True)
        sys.exit(1)
    print(json.dumps({"seeding": True, "port": ses.listen_port()}), flush=True)
    while time.time() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 0.1)
        if r and not sys.stdin.readline():
            break
        ses.pop_alerts()
    st = h.status()
    print(json.dumps({"uploaded": st.total_payload_upload}), flush=True)


def pair(torrent, seed_dir, leech_dir, url, timeout):
    info = lt.torrent_info(torrent)
    seeder, leecher = session(PERF), session(PERF)
    sh = seeder.add_torrent(start_now(lt.torrent_info(info), seed_dir, url))
    deadline = time.time() + timeout
    replied = False
    while not (replied and sh.status().is_seeding):
        if time.time() > deadline:
            print(json.dumps({"ok": False, "error": "seeder never checked its data and announced"}))
            sys.exit(1)
        seeder.wait_for_alert(100)
        for a in seeder.pop_alerts():
            replied = replied or isinstance(a, lt.tracker_reply_alert)

    start = time.time()
    lh = leecher.add_torrent(start_now(lt.torrent_info(info), leech_dir, url))
    done, connect, transport, trace, next_trace = False, None, None, [], start
    while not done:
        now = time.time()
        if now > deadline:
            st = lh.status()
            print(json.dumps({"ok": False, "error": "leecher not done", "progress": st.progress,
                              "trace": trace}))
            sys.exit(1)
        if now >= next_trace:
            trace.append([round(now - start, 3), round(lh.status().progress * 100, 1)])
            next_trace = now + 0.25
        # Alerts, not status polls, tell when it is done: polling costs the session's thread.
        leecher.wait_for_alert(50)
        for a in leecher.pop_alerts():
            if isinstance(a, lt.peer_connect_alert) and connect is None:
                connect = time.time() - start
                transport = "uTP" if "uTP" in a.message() else "TCP"
            done = done or isinstance(a, lt.torrent_finished_alert)
        seeder.pop_alerts()
    secs = time.time() - start
    files = info.files()
    for i in range(files.num_files()):
        fd = os.open(os.path.join(leech_dir, files.file_path(i)), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    synced = time.time() - start
    print(json.dumps({"ok": True, "seconds": secs, "synced": synced, "connect": connect,
                      "transport": transport, "trace": trace}), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "seed":
        seed(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif mode == "pair":
        pair(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
