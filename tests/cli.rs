//! Tests of the `swarmd` binary itself: config printing and checking, flags and environment
//! precedence, serving on port 0, and a clean exit on SIGTERM and SIGINT.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

use common::served::{Served, BIN};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("swarmd-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn config_print_is_valid_and_checks_clean() {
    let out = Command::new(BIN)
        .args(["config", "print"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[http]") && text.contains("# "),
        "commented TOML expected"
    );
    let parsed = swarmd::Config::from_toml(&text, "printed").unwrap();
    assert_eq!(parsed, swarmd::Config::default());

    let dir = temp_dir("print");
    let file = dir.join("default.toml");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = temp_dir("check");
    for (body, needle) in [
        ("[http]\nbindd = []\n", "bindd"),
        ("[tracker]\nmax_numwant = \"lots\"\n", "max_numwant"),
        (
            "[registry]\npeer_timeout_secs = 60\n",
            "registry.peer_timeout_secs",
        ),
        ("[http\n", "f.toml"),
    ] {
        let file = dir.join("f.toml");
        std::fs::write(&file, body).unwrap();
        let out = Command::new(BIN)
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{body:?} should be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{body:?}: {err}");
    }
    // An unknown environment override is refused the same way.
    let file = dir.join("ok.toml");
    std::fs::write(&file, "").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&file)
        .env("SWARMD__HTTP__NOPE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    std::fs::remove_dir_all(dir).unwrap();
}

fn block_get(addr: SocketAddr, target: &str) -> Reply {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(get(addr, target))
}

#[test]
fn serve_on_port_zero_answers_and_exits_cleanly_on_sigterm() {
    let mut s = Served::spawn(
        &[
            "--http-bind",
            "127.0.0.1:0",
            "--udp-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
        ],
        &[],
    );
    let http = s.addr("http tracker");
    let admin = s.addr("admin");
    let r = block_get(http, &announce_url([5; 20], [6; 20], 6881, 0, ""));
    assert_eq!(failure(&r), None);
    assert_eq!(int(&r.bencode(), "complete"), 1);
    let end = Instant::now() + Duration::from_secs(10);
    while block_get(admin, "/readyz").status != 200 {
        assert!(Instant::now() < end, "/readyz never became 200");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.signal("TERM");
    let status = s.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    s.wait_line("stopped");
}

#[test]
fn flags_beat_environment_which_beats_the_file_and_json_logs_work() {
    let dir = temp_dir("precedence");
    let file = dir.join("c.toml");
    // The file asks for a fixed, privileged-looking port that must be overridden by env...
    std::fs::write(
        &file,
        "[http]\nbind = [\"127.0.0.1:1\"]\n[admin]\nbind = [\"127.0.0.1:2\"]\n[tracker]\nannounce_interval_secs = 100\nmin_announce_interval_secs = 50\n[registry]\npeer_timeout_secs = 300\n",
    )
    .unwrap();
    let mut s = Served::spawn(
        &[
            "--config",
            file.to_str().unwrap(),
            "--admin-bind",
            "127.0.0.1:0",
            "--udp-bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &[
            ("SWARMD__HTTP__BIND", "[\"127.0.0.1:0\"]"),
            ("SWARMD__ADMIN__BIND", "[\"127.0.0.1:3\"]"),
            ("SWARMD__TRACKER__ANNOUNCE_INTERVAL_SECS", "120"),
        ],
    );
    let line = s.wait_line("http tracker listening");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let http: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
    assert_ne!(http.port(), 1, "env overrides the file");
    let line = s.wait_line("admin listening");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let admin: SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
    assert_ne!(admin.port(), 3, "the flag overrides env");
    let d = block_get(http, &announce_url([5; 20], [6; 20], 6881, 0, "")).bencode();
    assert_eq!(int(&d, "interval"), 120, "env value");
    assert_eq!(int(&d, "min interval"), 50, "file value");
    assert_eq!(block_get(admin, "/healthz").status, 200);
    s.signal("INT");
    assert!(s.wait_exit(Duration::from_secs(15)).success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_bind_fails_with_a_clear_error() {
    // Hold a port, then ask swarmd to bind it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--http-bind",
            &format!("127.0.0.1:{port}"),
            "--udp-bind",
            "127.0.0.1:0",
            "--dht-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
        ])
        .env("SWARMD__DHT__BOOTSTRAP_NODES", "[]")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bind http tracker"), "{err}");
}
