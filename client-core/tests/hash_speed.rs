//! Hashing speed of `metainfo::create` against `mktorrent` on the same 1 GiB file, same run.
//! Ignored by default (it writes 1 GiB to the temp dir); run with
//! `cargo test -p swarmd-client-core --release --test hash_speed -- --ignored --nocapture`.
//! `SWARMD_HASH_FILE=/path` uses an existing file instead.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use swarmd_client_core::metainfo::{create, CreateOptions};
use swarmd_client_core::Metainfo;

#[test]
#[ignore = "writes and hashes 1 GiB; run by hand with --release"]
fn hash_speed_vs_mktorrent() {
    let (file, temp) = match std::env::var_os("SWARMD_HASH_FILE") {
        Some(p) => (PathBuf::from(p), false),
        None => {
            let p = std::env::temp_dir().join(format!("swarmd-hash-{}.bin", std::process::id()));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
            let mut block = vec![0u8; 1 << 20];
            for i in 0..1024u32 {
                for (j, b) in block.iter_mut().enumerate() {
                    *b = (j as u32 ^ i).wrapping_mul(2_654_435_761).to_le_bytes()[2];
                }
                f.write_all(&block).unwrap();
            }
            f.flush().unwrap();
            (p, true)
        }
    };
    let len = std::fs::metadata(&file).unwrap().len();
    let mib = len as f64 / 1048576.0;
    // Warm the page cache so both tools hash from memory.
    std::fs::read(&file).unwrap();
    let opts = CreateOptions {
        piece_length: Some(1 << 20),
        trackers: vec![vec!["http://t/a".into()]],
        ..CreateOptions::default()
    };
    let start = Instant::now();
    let ours = create(&file, &opts, |_| {}).unwrap();
    let ours_secs = start.elapsed().as_secs_f64();
    println!(
        "swarmd:    {mib:.0} MiB in {ours_secs:.2} s = {:.0} MiB/s ({} threads)",
        mib / ours_secs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let out = std::env::temp_dir().join(format!("swarmd-hash-{}.torrent", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let start = Instant::now();
    match Command::new("mktorrent")
        .args(["-l", "20", "-a", "http://t/a", "-o"])
        .arg(&out)
        .arg(&file)
        .output()
    {
        Ok(o) if o.status.success() => {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "mktorrent: {mib:.0} MiB in {secs:.2} s = {:.0} MiB/s",
                mib / secs
            );
            let theirs = Metainfo::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
            let ours = Metainfo::from_bytes(&ours).unwrap();
            assert_eq!(ours.info_hash(), theirs.info_hash());
        }
        other => println!("mktorrent not run: {other:?}"),
    }
    let _ = std::fs::remove_file(&out);
    if temp {
        let _ = std::fs::remove_file(&file);
    }
}
