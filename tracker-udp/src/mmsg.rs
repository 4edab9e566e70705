//! The batched worker loop (Linux): `recvmmsg` up to `recv_batch` datagrams at once (blocking
//! for the first, taking whatever else is queued), handle them all, then `sendmmsg` the replies.
//! A thin layer over libc: the buffers, addresses and headers are allocated once per worker and
//! the headers re-pointed at them before every call.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::ptr;

use swarmd_swarm::Prefetch;

use crate::config::MAX_BATCH;
use crate::metrics::DropReason;
use crate::server::{Worker, MAX_PACKET, RECV_BUF};

/// One datagram's source (or a reply's destination) in the kernel's form.
#[derive(Clone, Copy)]
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn empty() -> Self {
        Self {
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid (AF_UNSPEC) value.
            storage: unsafe { zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The address as a std `SocketAddr`, if it is IPv4 or IPv6.
    fn socket_addr(&self) -> Option<SocketAddr> {
        let len = self.len as usize;
        match i32::from(self.storage.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, the kernel wrote at
                // least its size, and sockaddr_storage is aligned for every sockaddr type.
                let sin = unsafe { &*ptr::from_ref(&self.storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*ptr::from_ref(&self.storage).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

fn iovec(ptr: *mut u8, len: usize) -> libc::iovec {
    libc::iovec {
        iov_base: ptr.cast(),
        iov_len: len,
    }
}

fn header(addr: &mut RawAddr, iov: &mut libc::iovec, name_len: libc::socklen_t) -> libc::mmsghdr {
    // SAFETY: msghdr/mmsghdr are plain old data; zero is a valid value for every field
    // (null pointers and zero lengths), the ones that matter are set right after.
    let mut m: libc::mmsghdr = unsafe { zeroed() };
    m.msg_hdr.msg_name = ptr::from_mut(&mut addr.storage).cast();
    m.msg_hdr.msg_namelen = name_len;
    m.msg_hdr.msg_iov = ptr::from_mut(iov);
    m.msg_hdr.msg_iovlen = 1;
    m
}

/// Runs the batched loop until the worker is told to stop.
pub(crate) fn run(w: &mut Worker, batch: usize) {
    let batch = batch.clamp(1, MAX_BATCH);
    let fd = w.socket.as_raw_fd();
    let reply_cap = w.tracker.config().max_reply_bytes.min(RECV_BUF);
    let mut bufs = vec![0u8; batch * RECV_BUF];
    let mut outs: Vec<Vec<u8>> = (0..batch).map(|_| Vec::with_capacity(reply_cap)).collect();
    let mut srcs = vec![RawAddr::empty(); batch];
    let mut dsts = vec![RawAddr::empty(); batch];
    let mut recv_iov: Vec<libc::iovec> = Vec::with_capacity(batch);
    let mut send_iov: Vec<libc::iovec> = Vec::with_capacity(batch);
    let mut recv_msgs: Vec<libc::mmsghdr> = Vec::with_capacity(batch);
    let mut send_msgs: Vec<libc::mmsghdr> = Vec::with_capacity(batch);
    let mut flushed_at = w.tracker.now();

    while !w.stopping() {
        recv_iov.clear();
        recv_iov.extend(
            bufs.chunks_exact_mut(RECV_BUF)
                .map(|b| iovec(b.as_mut_ptr(), b.len())),
        );
        recv_msgs.clear();
        for (addr, iov) in srcs.iter_mut().zip(recv_iov.iter_mut()) {
            let full = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            recv_msgs.push(header(addr, iov, full));
        }
        // SAFETY: `recv_msgs` holds `batch` headers, each pointing at a live sockaddr_storage
        // in `srcs` (with its full size) and a live iovec in `recv_iov` that covers a distinct
        // RECV_BUF-byte slice of `bufs`; none of these vectors is touched until the call returns.
        // MSG_WAITFORONE blocks (up to the socket's read timeout) for the first datagram only.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                recv_msgs.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        let Ok(received) = usize::try_from(r) else {
            let e = io::Error::last_os_error();
            if w.on_recv_error(&e) {
                continue;
            }
            break;
        };
        let now = w.tracker.now();
        let mut replies = 0;
        // A two-step prefetch pipeline over the batch: the swarm table's bucket two datagrams
        // ahead, the swarm's record one ahead, so their cache misses overlap the work on this
        // one (about a fifth off a registry announce with cold swarms: the `batch32_uniform`
        // cases of `cargo bench -p swarmd-swarm --bench registry`).
        let packet_at = |i: usize| {
            let len = recv_msgs
                .get(i)
                .map_or(0, |m| m.msg_len as usize)
                .min(RECV_BUF);
            bufs.get(i * RECV_BUF..i * RECV_BUF + len)
                .unwrap_or_default()
        };
        for i in 0..received.min(2) {
            w.tracker.prefetch(packet_at(i), Prefetch::Bucket);
        }
        for (i, msg) in recv_msgs.iter().take(received).enumerate() {
            if i + 2 < received {
                w.tracker.prefetch(packet_at(i + 2), Prefetch::Bucket);
            }
            if i + 1 < received {
                w.tracker.prefetch(packet_at(i + 1), Prefetch::Record);
            }
            let len = msg.msg_len as usize;
            srcs[i].len = msg.msg_hdr.msg_namelen;
            let truncated = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let Some(src) = srcs[i].socket_addr() else {
                w.tally.drop(DropReason::Malformed);
                continue;
            };
            if len > MAX_PACKET || truncated {
                w.tally.received(len);
                w.tally.drop(DropReason::TooLong);
                continue;
            }
            let packet = &bufs[i * RECV_BUF..i * RECV_BUF + len];
            let out = &mut outs[replies];
            if w.tracker
                .handle_with(packet, src, now, out, &mut w.scratch, &mut w.tally)
            {
                dsts[replies] = srcs[i];
                replies += 1;
            }
        }
        send_all(
            w,
            fd,
            &mut outs[..replies],
            &mut dsts[..replies],
            &mut send_iov,
            &mut send_msgs,
        );
        // Published once a second under load, and when the socket goes idle (the read timeout,
        // `Worker::on_recv_error`). Publishing whenever a batch did not fill cost a dozen
        // atomic adds per wake-up under moderate load, where batches hold a few datagrams.
        if now != flushed_at {
            flushed_at = now;
            w.tally.flush(&w.tracker.metrics);
        }
    }
}

/// Sends `outs[i]` to `dsts[i]` for every i with as few `sendmmsg` calls as the kernel allows;
/// a reply the kernel refuses is counted and skipped.
fn send_all(
    w: &mut Worker,
    fd: libc::c_int,
    outs: &mut [Vec<u8>],
    dsts: &mut [RawAddr],
    iovs: &mut Vec<libc::iovec>,
    msgs: &mut Vec<libc::mmsghdr>,
) {
    iovs.clear();
    iovs.extend(outs.iter_mut().map(|o| iovec(o.as_mut_ptr(), o.len())));
    msgs.clear();
    for (addr, iov) in dsts.iter_mut().zip(iovs.iter_mut()) {
        let len = addr.len;
        msgs.push(header(addr, iov, len));
    }
    let mut done = 0;
    while done < msgs.len() {
        let rest = &mut msgs[done..];
        // SAFETY: every header in `rest` points at a live address in `dsts` with the length the
        // kernel reported for it, and at a live iovec in `iovs` covering an initialised reply
        // in `outs`; the kernel only reads them, and nothing moves until the call returns.
        let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
        match usize::try_from(r) {
            Ok(n) if n > 0 => {
                for m in &rest[..n] {
                    w.tally.sent(m.msg_len as usize);
                }
                done += n;
            }
            _ if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => {
                // The first remaining reply failed: skip it, send the rest.
                w.tally.drop(DropReason::SendError);
                done += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_addresses_convert() {
        let mut a = RawAddr::empty();
        assert_eq!(a.socket_addr(), None);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 6881u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(192, 0, 2, 1)).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
        unsafe {
            ptr::from_mut(&mut a.storage)
                .cast::<libc::sockaddr_in>()
                .write(sin)
        };
        a.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(a.socket_addr(), Some("192.0.2.1:6881".parse().unwrap()));
        a.len = 4;
        assert_eq!(a.socket_addr(), None);
    }
}
