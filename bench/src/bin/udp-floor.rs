//! The kernel floor of a BEP 15 tracker on this machine: a responder that does no tracker work
//! at all. It answers every connect, announce and scrape with a well-formed reply (a fixed
//! connection id, an empty peer list, zero counts) through the same I/O swarmd's UDP workers
//! use: one socket, `recvmmsg` of up to `udp.recv_batch` datagrams (swarmd's default unless
//! told otherwise; blocking for the first), `sendmmsg` of the replies. `bench/compare.sh`
//! drives it with the same load as swarmd and opentracker; its CPU per request is what the
//! kernel alone costs, and its saturated rate the most any tracker with this I/O could answer.
//! Loopback benchmarking only: it checks nothing.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr;

use clap::Parser;

/// Answer BEP 15 requests with empty replies, as fast as the kernel allows.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:6969")]
    bind: std::net::SocketAddr,
    /// Datagrams per `recvmmsg`/`sendmmsg` (swarmd's `udp.recv_batch`; its default if unset).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch: Option<u16>,
}
/// Receive buffer per datagram.
const BUF: usize = 2048;
/// Longest reply: a scrape of 74 hashes.
const REPLY: usize = 8 + 74 * 12;

/// The reply to one request in `req` (nothing for anything else), written into `out`.
fn reply(req: &[u8], out: &mut [u8; REPLY]) -> usize {
    let (Some(action), Some(tid)) = (req.get(8..12), req.get(12..16)) else {
        return 0;
    };
    out[..4].copy_from_slice(action);
    out[4..8].copy_from_slice(tid);
    match u32::from_be_bytes([action[0], action[1], action[2], action[3]]) {
        0 => {
            out[8..16].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
            16
        }
        1 if req.len() >= 98 => {
            out[8..12].copy_from_slice(&1800u32.to_be_bytes());
            out[12..20].fill(0);
            20
        }
        2 => {
            let n = (req.len().saturating_sub(16) / 20).clamp(1, 74);
            out[8..8 + n * 12].fill(0);
            8 + n * 12
        }
        _ => 0,
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let batch = args.batch.map_or(
        swarmd_tracker_udp::UdpConfig::default().recv_batch,
        usize::from,
    );
    let sock = UdpSocket::bind(args.bind)?;
    eprintln!("udp-floor listening on {}", sock.local_addr()?);
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; BUF]; batch];
    let mut outs = vec![[0u8; REPLY]; batch];
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { zeroed() }; batch];
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(batch);
    let mut out_iovs: Vec<libc::iovec> = Vec::with_capacity(batch);
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(batch);
    let mut replies: Vec<libc::mmsghdr> = Vec::with_capacity(batch);
    let mut answered = vec![false; batch];
    loop {
        iovs.clear();
        msgs.clear();
        for buf in &mut bufs {
            iovs.push(libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: BUF,
            });
        }
        for (addr, iov) in addrs.iter_mut().zip(iovs.iter_mut()) {
            // SAFETY: mmsghdr is plain old data; zero is valid for every field.
            let mut m: libc::mmsghdr = unsafe { zeroed() };
            m.msg_hdr.msg_name = ptr::from_mut(addr).cast();
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_iov = ptr::from_mut(iov);
            m.msg_hdr.msg_iovlen = 1;
            msgs.push(m);
        }
        // SAFETY: `batch` headers, each pointing at its own live address and buffer, untouched
        // until the call returns.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        let Ok(received) = usize::try_from(r) else {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        };
        out_iovs.clear();
        replies.clear();
        answered.fill(false);
        for i in 0..received {
            let len = (msgs[i].msg_len as usize).min(BUF);
            let n = reply(&bufs[i][..len], &mut outs[i]);
            answered[i] = n > 0;
            if n > 0 {
                out_iovs.push(libc::iovec {
                    iov_base: outs[i].as_mut_ptr().cast(),
                    iov_len: n,
                });
            }
        }
        let sources = addrs.iter_mut().zip(&msgs).zip(answered.iter().copied());
        for ((addr, msg), iov) in sources.filter(|s| s.1).map(|s| s.0).zip(&mut out_iovs) {
            // SAFETY: as above; the address is the request's source, the iovec its reply.
            let mut m: libc::mmsghdr = unsafe { zeroed() };
            m.msg_hdr.msg_name = ptr::from_mut(addr).cast();
            m.msg_hdr.msg_namelen = msg.msg_hdr.msg_namelen;
            m.msg_hdr.msg_iov = ptr::from_mut(iov);
            m.msg_hdr.msg_iovlen = 1;
            replies.push(m);
        }
        let mut sent = 0;
        while sent < replies.len() {
            // SAFETY: the headers point at live addresses and reply buffers, untouched until
            // the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    replies[sent..].as_mut_ptr(),
                    (replies.len() - sent) as libc::c_uint,
                    0,
                )
            };
            match usize::try_from(r) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
    }
}
