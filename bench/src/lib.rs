//! Load generators for swarmd's benchmarks. Each binary under `src/bin/` drives one protocol;
//! they target loopback or the project's own test hosts only.

use std::path::Path;

use swarmd_proto::InfoHash;

/// Reads info hashes, one per line in hex (the format the benchmark scripts also give to
/// opentracker's allow list).
pub fn read_hashes(path: &Path) -> anyhow::Result<Vec<InfoHash>> {
    let text = std::fs::read_to_string(path)?;
    let hashes = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<InfoHash>()
                .map_err(|e| anyhow::anyhow!("{}: {l:?}: {e}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!hashes.is_empty(), "{}: no info hashes", path.display());
    Ok(hashes)
}
