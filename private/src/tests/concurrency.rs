//! Announces from several threads while another flushes: nothing lost, nothing doubled.

use std::sync::atomic::AtomicBool;

use super::*;

#[test]
fn totals_are_exact_with_concurrent_announces_and_flushes() {
    const THREADS: usize = 4;
    const ANNOUNCES: u64 = 400;
    let db = TempDb::new("concurrent");
    let fx = Fx::with_config(&config(Mode::Private, db.path()));
    fx.allow(hash(1));
    fx.allow(hash(2));
    let users: Vec<(i64, String)> = (0..THREADS).map(|i| fx.user(&format!("u{i}"))).collect();
    let done = AtomicBool::new(false);
    // The workers start once the flusher runs, so flushes overlap announces however the
    // threads are scheduled.
    let flushing = AtomicBool::new(false);
    let mut flushes = 0;
    std::thread::scope(|s| {
        let workers: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, (_, key))| {
                let fx = &fx;
                let flushing = &flushing;
                s.spawn(move || {
                    while !flushing.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    for n in 0..ANNOUNCES {
                        for (h, p) in [(hash(1), 1u8), (hash(2), 2)] {
                            let a = Ann::new(h, Some(key))
                                .peer(peer(b"-qB", p + 10 * i as u8))
                                .totals(n * 10, n * 3, 100);
                            assert!(fx.policy.announce(&a.req()).is_allowed());
                        }
                    }
                })
            })
            .collect();
        let flusher = s.spawn(|| {
            let mut n = 0;
            flushing.store(true, Ordering::Release);
            loop {
                fx.policy.flush().unwrap();
                n += 1;
                if done.load(Ordering::Relaxed) {
                    break n;
                }
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        flushes = flusher.join().unwrap();
    });
    fx.policy.flush().unwrap();
    assert!(flushes > 0);
    for (uid, _) in &users {
        let d = fx.policy.user(*uid).unwrap();
        assert_eq!(d.torrents.len(), 2);
        for t in &d.torrents {
            assert_eq!(t.totals.raw_uploaded, (ANNOUNCES - 1) * 10);
            assert_eq!(t.totals.raw_downloaded, (ANNOUNCES - 1) * 3);
        }
    }
    let s = fx.policy.stats();
    assert_eq!(s.sessions, (THREADS * 2) as u64);
    assert_eq!(s.pending_records, 0);
}
