//! Benchmark of the piece picker's hot path: picking and receiving blocks while 30 peers
//! download a 4,000-piece torrent (16 blocks a piece) to completion, endgame included.
//!
//! Each peer keeps up to 8 requests outstanding; on its turn it receives its oldest request and
//! tops its queue up again, so about as many pieces are in progress as in a real swarm. The
//! figure to read is time per block: the iteration time divided by the 64,000 blocks (criterion
//! prints it as the throughput in elements per second).

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use swarmd_client_core::picker::{BlockRequest, Picker, Received, BLOCK_LEN};

const PIECES: u32 = 4_000;
const BLOCKS_PER_PIECE: u32 = 16;
const PEERS: usize = 30;
const QUEUE: usize = 8;

/// Bitfields of the peers: peer 0 is a seed, the others hold each piece with odds 7 in 10.
fn bitfields(rng: &mut StdRng) -> Vec<Vec<u8>> {
    (0..PEERS)
        .map(|peer| {
            let mut b = vec![0u8; PIECES.div_ceil(8) as usize];
            for p in 0..PIECES {
                if peer == 0 || rng.random_range(0..10) < 7 {
                    b[(p / 8) as usize] |= 0x80 >> (p % 8);
                }
            }
            b
        })
        .collect()
}

/// A picker that knows every peer's pieces, and one request queue per peer.
fn setup(bits: &[Vec<u8>]) -> (Picker<u32>, Vec<VecDeque<BlockRequest>>) {
    let piece_len = u64::from(BLOCKS_PER_PIECE * BLOCK_LEN);
    let mut picker = Picker::new(PIECES, piece_len, u64::from(PIECES) * piece_len);
    for b in bits {
        picker.peer_bitfield(&b[..]);
    }
    let queues = (0..PEERS).map(|_| VecDeque::with_capacity(QUEUE)).collect();
    (picker, queues)
}

/// Downloads the whole torrent; returns the number of new blocks received.
fn download(
    picker: &mut Picker<u32>,
    queues: &mut [VecDeque<BlockRequest>],
    bits: &[Vec<u8>],
    rng: &mut StdRng,
    out: &mut Vec<BlockRequest>,
) -> u64 {
    let mut blocks = 0;
    while !picker.is_complete() {
        for (peer, queue) in (0u32..).zip(queues.iter_mut()) {
            if let Some(b) = queue.pop_front() {
                if let Received::New { piece_done, .. } = picker.block_received(peer, b) {
                    blocks += 1;
                    if piece_done {
                        picker.piece_verified(b.piece, true);
                    }
                }
            }
            out.clear();
            let room = QUEUE - queue.len();
            picker.pick_blocks(peer, &bits[peer as usize][..], room, rng, out);
            queue.extend(out.iter().copied());
        }
    }
    blocks
}

fn bench_picker(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let bits = bitfields(&mut rng);
    let mut out = Vec::with_capacity(QUEUE);
    let mut g = c.benchmark_group("picker");
    g.sample_size(20);
    g.throughput(Throughput::Elements(u64::from(PIECES * BLOCKS_PER_PIECE)));
    g.bench_function("download_4000_pieces_30_peers", |b| {
        b.iter_batched(
            || setup(&bits),
            |(mut picker, mut queues)| {
                let n = download(&mut picker, &mut queues, &bits, &mut rng, &mut out);
                black_box(n)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn` they
// generate (which the workspace's `missing_docs` lint rejects).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_picker(&mut c);
    c.final_summary();
}
