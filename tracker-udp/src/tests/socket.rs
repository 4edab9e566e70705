//! Real sockets on loopback: workers answer, share the port, publish their counts when idle,
//! and stop promptly.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmd_proto::udp::{parse_response, write_announce_request, write_connect_request, Response};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{is_family_unavailable, UdpServer};

fn round_trip(client: &UdpSocket, server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    // Loopback does not lose packets, but retry a few times rather than hang on a surprise.
    for _ in 0..5 {
        client.send_to(packet, server).unwrap();
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            assert_eq!(from, server);
            return buf[..n].to_vec();
        }
    }
    panic!("no reply from {server}");
}

fn exercise(recv_batch: usize, bind: SocketAddr) {
    let f = fixture_with(
        UdpConfig {
            workers: 2,
            recv_batch,
            ..UdpConfig::default()
        },
        Recording::default(),
        swarmd_swarm::RegistryConfig::default(),
    );
    let Fixture {
        tracker, metrics, ..
    } = f;
    let tracker = Arc::new(tracker);
    let shutdown = CancellationToken::new();
    let server = match UdpServer::start(&[bind], tracker, shutdown.clone()) {
        Ok(s) => s,
        Err(e) if is_family_unavailable(&e) => return,
        Err(e) => panic!("start: {e}"),
    };
    let addr = server.local_addrs()[0];
    assert_eq!(server.local_addrs().len(), 1);
    assert_ne!(addr.port(), 0);

    // Several clients (several source ports), so both sockets are likely to serve some.
    for _ in 0..4 {
        let client = UdpSocket::bind(SocketAddr::new(bind.ip(), 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut p = Vec::new();
        write_connect_request(&mut p, 77);
        let reply = round_trip(&client, addr, &p);
        let Ok(Response::Connect {
            transaction_id: 77,
            connection_id,
        }) = parse_response(&reply)
        else {
            panic!("bad connect reply {reply:?}")
        };
        p.clear();
        write_announce_request(&mut p, &announce_req(connection_id));
        let reply = round_trip(&client, addr, &p);
        assert!(matches!(
            parse_response(&reply),
            Ok(Response::Announce {
                transaction_id: 0x0102_0304,
                ..
            })
        ));
    }

    // Counts reach the shared metrics once a worker idles (100 ms read timeout).
    let ok = || {
        metric(
            &metrics,
            "swarmd_requests_total",
            &[
                ("protocol", "udp"),
                ("action", "announce"),
                ("result", "ok"),
            ],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while ok() < 4 {
        assert!(Instant::now() < deadline, "counts never published");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = metric(&metrics, "swarmd_bytes_sent_total", &[("protocol", "udp")]);
    assert!(sent >= 4 * (16 + 20), "{sent}");

    let stopping = Instant::now();
    shutdown.cancel();
    server.join();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "join took {:?}",
        stopping.elapsed()
    );
}

#[test]
fn plain_workers_answer_and_stop() {
    exercise(1, "127.0.0.1:0".parse().unwrap());
}

#[test]
fn batched_workers_answer_and_stop() {
    exercise(16, "127.0.0.1:0".parse().unwrap());
}

#[test]
fn ipv6_workers_answer_and_stop() {
    exercise(1, "[::1]:0".parse().unwrap());
}

#[test]
fn several_addresses_and_worker_threads_are_named() {
    let (tracker, _) = open_tracker(UdpConfig {
        workers: 3,
        ..UdpConfig::default()
    });
    let shutdown = CancellationToken::new();
    let addrs: Vec<SocketAddr> = vec![
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.2:0".parse().unwrap(),
    ];
    let server = UdpServer::start(&addrs, Arc::new(tracker), shutdown.clone()).unwrap();
    assert_eq!(server.local_addrs().len(), 2);
    assert_eq!(server.workers.len(), 6);
    for (i, w) in server.workers.iter().enumerate() {
        assert_eq!(w.thread().name(), Some(format!("swarmd-udp-{i}").as_str()));
    }
    // Cancelling before join, or dropping the caller's token, stops everything.
    drop(shutdown.clone());
    shutdown.cancel();
    let t = Instant::now();
    server.join();
    assert!(t.elapsed() < Duration::from_secs(1));
}
