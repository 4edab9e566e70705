//! The real binary in private mode: `swarmd admin ...` against a running `swarmd serve`, and the
//! accounting loss bound across a SIGKILL: what was flushed survives, the unflushed interval's
//! bytes come back with the peer's next announce (its baseline was persisted with the totals).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::served::{Served, BIN};
use common::*;
use serde_json::Value;

const TOKEN: &str = "cli-admin-token-0123456789";

fn serve(db: &Path) -> (Served, SocketAddr, SocketAddr) {
    let db = db.display().to_string();
    let mut s = Served::spawn(
        &[
            "--http-bind",
            "127.0.0.1:0",
            "--udp-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
        ],
        &[
            ("SWARMD__ACCESS__MODE", "private"),
            ("SWARMD__ACCESS__DATABASE", &db),
            // No timed flush during the test: only `admin flush` and the stop write.
            ("SWARMD__ACCESS__FLUSH_INTERVAL_SECS", "3600"),
            (
                "SWARMD__ACCESS__ANNOUNCE_URLS",
                "[\"http://tracker.example:6969/announce\"]",
            ),
            ("SWARMD__ADMIN__TOKEN", TOKEN),
        ],
    );
    let http = s.addr("http tracker");
    let admin = s.addr("admin");
    (s, http, admin)
}

/// Runs `swarmd admin --url ADMIN --token TOKEN ARGS`; returns (success, stdout, stderr).
fn admin(addr: SocketAddr, token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("admin")
        .args(["--url", &format!("http://{addr}")])
        .env_remove("SWARMD_ADMIN_TOKEN");
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let out = cmd.args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn admin_ok(addr: SocketAddr, args: &[&str]) -> String {
    let (ok, out, err) = admin(addr, Some(TOKEN), args);
    assert!(ok, "swarmd admin {args:?} failed: {err}");
    out
}

fn block_announce(http: SocketAddr, key: &str, ih: &str, up: u64, event: &str) {
    let ih: swarmd_proto::InfoHash = ih.parse().unwrap();
    let target = format!(
        "/{key}/announce?info_hash={}&peer_id={}&port=7001&uploaded={up}&downloaded=0&left=0{}",
        enc(&ih.0),
        enc(&[1; 20]),
        if event.is_empty() {
            String::new()
        } else {
            format!("&event={event}")
        }
    );
    let r = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(get(http, &target));
    assert_eq!(failure(&r), None);
}

fn raw_uploaded(admin_addr: SocketAddr) -> u64 {
    let v: Value =
        serde_json::from_str(&admin_ok(admin_addr, &["--json", "user", "show", "alice"])).unwrap();
    v["totals"]["raw_uploaded"].as_u64().unwrap()
}

#[test]
fn admin_cli_manages_a_private_tracker_and_sigkill_loses_at_most_the_unflushed_interval() {
    let dir = std::env::temp_dir().join(format!("swarmd-private-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/file.bin"), vec![7u8; 40_000]).unwrap();
    let torrent = dir.join("t.torrent");
    let out = Command::new(BIN)
        .args(["torrent", "create", "--private", "-o"])
        .arg(&torrent)
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = dir.join("swarmd.db");
    let (mut s, http, addr) = serve(&db);

    // Without the token the CLI fails and says what is missing.
    let (ok, _, err) = admin(addr, None, &["stats"]);
    assert!(!ok && err.contains("token"), "{err}");
    let (ok, _, err) = admin(addr, Some("not-the-token-at-all-xx"), &["stats"]);
    assert!(!ok && err.contains("bearer token"), "{err}");

    // `user create` prints the passkey and the personal announce URL.
    let out = admin_ok(addr, &["user", "create", "alice"]);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("passkey  "))
        .expect("a passkey line")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 32);
    assert!(
        out.contains(&format!(
            "announce http://tracker.example:6969/{key}/announce"
        )),
        "{out}"
    );
    // `torrent allow FILE` takes the hash, name and private flag from the .torrent.
    let out = admin_ok(addr, &["torrent", "allow", torrent.to_str().unwrap()]);
    assert!(out.contains("[private]") && out.contains("data"), "{out}");
    let ih = out.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(ih.len(), 40);
    assert!(admin_ok(addr, &["torrent", "list"]).contains(&ih));
    assert!(admin_ok(addr, &["stats"]).contains("mode     private"));
    // A bulk allow from a list of hashes, in one transaction.
    let list = dir.join("hashes.txt");
    std::fs::write(
        &list,
        format!(
            "# catalogue\n{}\n\n{}\n{}\n",
            "ab".repeat(20),
            "cd".repeat(20),
            "EF".repeat(20)
        ),
    )
    .unwrap();
    let out = admin_ok(
        addr,
        &[
            "torrent",
            "allow",
            "--hash-file",
            list.to_str().unwrap(),
            "--freeleech",
        ],
    );
    assert_eq!(out.trim(), "allowed 3 torrents");
    assert_eq!(admin_ok(addr, &["torrent", "list"]).lines().count(), 4);
    std::fs::write(&list, "not-a-hash\n").unwrap();
    let (ok, _, err) = admin(
        addr,
        Some(TOKEN),
        &["torrent", "allow", "--hash-file", list.to_str().unwrap()],
    );
    assert!(!ok && err.contains("hashes.txt:1"), "{err}");
    let out = admin_ok(addr, &["client", "deny", "-XX", "--note", "bad client"]);
    assert!(out.contains("deny") && out.contains("-XX"), "{out}");

    // 1000 bytes flushed; 2000 more pending when the process is killed.
    block_announce(http, &key, &ih, 0, "started");
    block_announce(http, &key, &ih, 1000, "");
    assert!(admin_ok(addr, &["flush"]).contains("flushed"));
    block_announce(http, &key, &ih, 3000, "");
    s.child.kill().unwrap();
    s.child.wait().unwrap();

    let (mut s, http, addr) = serve(&db);
    assert_eq!(
        raw_uploaded(addr),
        1000,
        "the flushed figures survive a SIGKILL"
    );
    // The next announce is measured against the persisted baseline: the lost bytes come back.
    block_announce(http, &key, &ih, 3500, "");
    assert_eq!(raw_uploaded(addr), 3500);
    let show = admin_ok(addr, &["user", "show", "alice"]);
    assert!(show.contains(&ih) && show.contains("active"), "{show}");

    // A clean stop writes what is pending.
    block_announce(http, &key, &ih, 4000, "");
    s.signal("TERM");
    assert!(s.wait_exit(Duration::from_secs(15)).success());
    let (_s, _, addr) = serve(&db);
    assert_eq!(raw_uploaded(addr), 4000, "a clean stop loses nothing");
    let _ = std::fs::remove_dir_all(&dir);
}
