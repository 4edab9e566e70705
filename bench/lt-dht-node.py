"""A libtorrent 2.0 DHT node on 127.0.0.1:PORT with its rate limits relaxed: the reference for
bench/dht-load.sh. Runs until killed. Usage: /usr/bin/python3 lt-dht-node.py PORT"""

import sys
import time

import libtorrent as lt

port = int(sys.argv[1])
ses = lt.session({
    "listen_interfaces": "127.0.0.1:%d" % port,
    "enable_dht": True,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "dht_bootstrap_nodes": "",
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_enforce_node_id": False,
    "dht_ignore_dark_internet": False,
    "dht_block_ratelimit": 100000000,
    "dht_upload_rate_limit": 100000000,
    "alert_mask": 0,
})
while True:
    time.sleep(3600)
