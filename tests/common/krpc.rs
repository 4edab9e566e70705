//! A KRPC client for end-to-end tests of the DHT node.

use std::net::SocketAddr;
use std::time::Duration;

use swarmd_proto::krpc::{parse_message, write_query, Body, Method, Want};
use swarmd_proto::{InfoHash, NodeId};

/// A KRPC client socket on loopback.
pub struct Krpc {
    pub sock: tokio::net::UdpSocket,
    pub node: SocketAddr,
    pub id: NodeId,
    pub tid: u16,
}

impl Krpc {
    pub async fn new(node: SocketAddr) -> Self {
        Self {
            sock: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            node,
            id: NodeId([0x33; 20]),
            tid: 0,
        }
    }

    /// Sends a query and returns the raw reply (panics on silence).
    pub async fn query(&mut self, method: Method<'_>) -> Vec<u8> {
        self.tid += 1;
        let mut p = Vec::new();
        write_query(
            &mut p,
            &self.tid.to_be_bytes(),
            self.id,
            &method,
            Want::default(),
            false,
            None,
        );
        self.sock.send_to(&p, self.node).await.unwrap();
        // The node may query us too (it pings new contacts to verify them): skip those, and
        // return the message carrying our transaction id.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut buf = vec![0u8; 4096];
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .expect("a KRPC reply within 5 s")
                .unwrap();
            buf.truncate(n);
            let ours = matches!(
                parse_message(&buf),
                Ok(m) if m.transaction_id == self.tid.to_be_bytes() && !matches!(m.body, Body::Query(_))
            );
            if ours {
                return buf;
            }
        }
    }

    /// get_peers: (values, token).
    pub async fn get_peers(&mut self, ih: [u8; 20]) -> (Vec<SocketAddr>, Vec<u8>) {
        let reply = self
            .query(Method::GetPeers {
                info_hash: InfoHash(ih),
                noseed: false,
                scrape: false,
            })
            .await;
        let msg = parse_message(&reply).unwrap();
        let Body::Response(r) = msg.body else {
            panic!("get_peers answered with {:?}", msg.body)
        };
        // BEP 42: every reply tells the requester its address.
        assert_eq!(msg.ip, Some(self.sock.local_addr().unwrap()));
        (
            r.values.iter().collect(),
            r.token.unwrap_or_default().to_vec(),
        )
    }
}
