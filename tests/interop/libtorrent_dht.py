"""Two libtorrent sessions whose only DHT contact is the node given on the command line.
Session A adds a magnet link, so libtorrent announces it to the DHT (through our node); session B
looks the info hash up with dht_get_peers and reports every peer it is given. Prints one JSON line.

Usage: /usr/bin/python3 libtorrent_dht.py NODE_HOST:PORT INFO_HASH_HEX WORKDIR TIMEOUT_SECS [EXPECT_PORT...]
Stops early once B has seen A and every EXPECT_PORT. Loopback only.
"""

import json
import sys
import time

import libtorrent as lt


def session(node):
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": node,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 100000,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification,
    })


def main():
    node, ih_hex, work, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    expect = {int(p) for p in sys.argv[5:]}
    a, b = session(node), session(node)
    params = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + ih_hex)
    params.save_path = work
    a.add_torrent(params)
    target = lt.sha1_hash(bytes.fromhex(ih_hex))

    log, found = [], set()
    deadline = time.time() + timeout
    next_lookup = 0.0
    while time.time() < deadline:
        for ses, tag in ((a, "A "), (b, "B ")):
            for al in ses.pop_alerts():
                log.append(tag + type(al).__name__ + ": " + al.message())
                if ses is b and isinstance(al, lt.dht_get_peers_reply_alert):
                    for ip, port in al.peers():
                        found.add("%s:%d" % (ip, port))
        ports = {int(p.rsplit(":", 1)[1]) for p in found}
        if a.listen_port() in ports and expect <= ports:
            break
        if time.time() >= next_lookup:
            b.dht_get_peers(target)
            next_lookup = time.time() + 1.0
        time.sleep(0.05)
    ports = {int(p.rsplit(":", 1)[1]) for p in found}
    print(json.dumps({
        "a_port": a.listen_port(),
        "b_port": b.listen_port(),
        "found": sorted(found),
        "found_a": a.listen_port() in ports,
        "found_expected": sorted(expect & ports),
        "log": log[-60:],
    }))
    sys.stdout.flush()
    return 0 if a.listen_port() in ports and expect <= ports else 1


if __name__ == "__main__":
    sys.exit(main())
