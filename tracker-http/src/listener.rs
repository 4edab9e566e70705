//! Opening TCP listeners the way a server wants them: IPv6 sockets IPv6-only (so `0.0.0.0` and
//! `[::]` on one port can both be bound), address reuse, a deep accept backlog.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Accept backlog for listeners: deep enough for bursts of connecting clients.
const BACKLOG: i32 = 1024;

/// Binds a non-blocking TCP listener on `addr` for the current tokio runtime.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt here
    // instead of one per connection (which shows when every request opens a connection).
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-connection setsockopt was dropped on the strength of this: accepted sockets
    /// inherit TCP_NODELAY from the listener.
    #[tokio::test]
    async fn accepted_sockets_inherit_nodelay() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(stream.nodelay().unwrap());
    }
}
