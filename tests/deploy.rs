//! The deployment files against the real thing: the example configs pass `swarmd config check`
//! and serve; every metric (and label) the Grafana dashboard and the alert rules query is
//! exported by a live swarmd; `swarmd health` (the container's HEALTHCHECK) answers 0/1; SIGHUP
//! rotates the admin token from `admin.token_file` and keeps the swarms.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::served::{Served, BIN};
use common::*;
use serde_json::{json, Value};
use swarmd_private::Mode;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const IH: [u8; 20] = [0x5d; 20];

fn deploy(path: &str) -> PathBuf {
    Path::new(ROOT).join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// A fresh directory under the temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("swarmd-deploy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the binary with `args`, without any inherited `SWARMD__*` override.
fn swarmd(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("SWARMD__") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).output().unwrap()
}

/// Waits until process `pid` catches SIGHUP and SIGTERM (its `SigCgt` mask in /proc). swarmd
/// logs its listeners before it installs its signal handlers, and a signal sent in between
/// would kill it with the default action.
fn wait_for_signal_handlers(pid: u32) {
    let end = Instant::now() + Duration::from_secs(20);
    let wanted = (1u64 << (SIGHUP - 1)) | (1u64 << (SIGTERM - 1));
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
            .unwrap();
        if caught & wanted == wanted {
            return;
        }
        assert!(
            Instant::now() < end,
            "swarmd never caught SIGHUP and SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signal numbers on Linux.
const SIGHUP: u32 = 1;
const SIGTERM: u32 = 15;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Example configurations

#[test]
fn example_configs_pass_config_check() {
    for file in ["config.example.toml", "config.private.example.toml"] {
        let path = deploy(file);
        let out = swarmd(&["config", "check", path.to_str().unwrap()]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
    }
    let private = swarmd::Config::from_toml(
        &read("config.private.example.toml"),
        "config.private.example.toml",
    )
    .unwrap();
    assert_eq!(private.access.mode, Mode::Private);
    assert!(private.access.database.starts_with("/var/lib/swarmd/"));
    assert!(!private.admin.token_file.is_empty());
    let public =
        swarmd::Config::from_toml(&read("config.example.toml"), "config.example.toml").unwrap();
    assert_eq!(public.access.mode, Mode::Public);
    assert!(public.admin.bind.iter().all(|a| a.ip().is_loopback()));
}

/// What the container's HEALTHCHECK does, against the real binary serving each example config
/// (listeners moved to loopback port 0, files to a temp dir): 0 once ready; 1 with a one-line
/// reason for a closed port or a status other than 200.
#[test]
fn health_answers_for_the_examples_and_fails_on_a_closed_port() {
    let dir = temp_dir("health");
    let token = dir.join("admin-token");
    std::fs::write(&token, "health-check-token-0123456789\n").unwrap();
    let (db, state, token) = (
        dir.join("swarmd.db").display().to_string(),
        dir.join("dht.bin").display().to_string(),
        token.display().to_string(),
    );
    for file in ["config.example.toml", "config.private.example.toml"] {
        let config = deploy(file).display().to_string();
        let mut s = Served::spawn(
            &[
                "--config",
                &config,
                "--http-bind",
                "127.0.0.1:0",
                "--udp-bind",
                "127.0.0.1:0",
                "--admin-bind",
                "127.0.0.1:0",
                "--log-format",
                "text",
            ],
            &[
                ("SWARMD__DHT__STATE_FILE", &state),
                ("SWARMD__ACCESS__DATABASE", &db),
                ("SWARMD__ADMIN__TOKEN_FILE", &token),
            ],
        );
        let admin = s.addr("admin");
        let out = swarmd(&["health", &format!("http://{admin}/readyz")]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert_eq!(stderr(&out), "");

        let out = swarmd(&["health", &format!("http://{admin}/no-such-page")]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("404"), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

        wait_for_signal_handlers(s.child.id());
        s.signal("TERM");
        assert!(s.wait_exit(Duration::from_secs(20)).success());
    }

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = swarmd(&["health", &format!("http://127.0.0.1:{port}/readyz")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Dashboard and alerts against a live /metrics

/// A metric selector in a PromQL expression, with the label names its matchers use.
#[derive(Debug)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

/// The selectors of a PromQL expression, and the labels of its grouping clauses (`by`,
/// `without`, `on`, `ignoring`, `group_left`, `group_right`). Functions and aggregations
/// (an identifier before `(`), keywords, strings, durations, numbers and Grafana variables are
/// skipped.
fn parse_promql(expr: &str) -> (Vec<Selector>, Vec<String>) {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 21] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
        "inf",
    ];
    let c: Vec<char> = expr.chars().collect();
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < c.len() && (c[*i].is_ascii_alphanumeric() || c[*i] == '_' || c[*i] == ':') {
            *i += 1;
        }
        c[start..*i].iter().collect::<String>()
    };
    let skip_ws = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    let skip_string = |i: &mut usize| {
        let q = c[*i];
        *i += 1;
        while *i < c.len() && c[*i] != q {
            if c[*i] == '\\' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    let (mut selectors, mut grouping) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' || ch == '`' {
            skip_string(&mut i);
        } else if ch == '[' {
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if ch == '$' {
            i += 1;
            ident(&mut i);
        } else if ch.is_ascii_digit() || ch == '.' {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ch == '{' {
            // Matchers: `name op "value"`, comma-separated.
            let mut labels = Vec::new();
            i += 1;
            loop {
                skip_ws(&mut i);
                if i >= c.len() || c[i] == '}' {
                    i += 1;
                    break;
                }
                if c[i] == ',' {
                    i += 1;
                    continue;
                }
                let name = ident(&mut i);
                assert!(!name.is_empty(), "cannot parse the matchers of {expr:?}");
                labels.push(name);
                while i < c.len() && !matches!(c[i], '"' | '\'' | '`') {
                    i += 1;
                }
                skip_string(&mut i);
            }
            match selectors.last_mut() {
                Some(Selector { labels: l, .. }) if l.is_empty() => *l = labels,
                _ => panic!("a matcher list without a metric name in {expr:?}"),
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let word = ident(&mut i);
            let mut j = i;
            skip_ws(&mut j);
            let call = j < c.len() && c[j] == '(';
            if GROUPING.contains(&word.as_str()) {
                if call {
                    let end = j + c[j..].iter().position(|&x| x == ')').unwrap();
                    let list: String = c[j + 1..end].iter().collect();
                    grouping.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                    i = end + 1;
                }
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                selectors.push(Selector {
                    metric: word,
                    labels: Vec::new(),
                });
                // The matcher list, if any, comes next (`{` attaches to this selector).
                i = j;
            }
        } else {
            i += 1;
        }
    }
    (selectors, grouping)
}

#[test]
fn promql_parser_finds_selectors_and_grouping_labels() {
    let (s, g) = parse_promql(
        r#"histogram_quantile(0.99, sum by (le, protocol) (rate(swarmd_request_duration_seconds_bucket{job="swarmd", instance=~"$instance"}[$__rate_interval]))) > 4 * 1024 and on (job) up"#,
    );
    let names: Vec<_> = s.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["swarmd_request_duration_seconds_bucket", "up"]);
    assert_eq!(s[0].labels, ["job", "instance"]);
    assert_eq!(g, ["le", "protocol", "job"]);
    let (s, _) = parse_promql(r#"time() - (x{a="}{,"} > 0) or sum(y) by (b)"#);
    let names: Vec<_> = s.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["x", "y"]);
}

/// Every PromQL query of the Grafana dashboard: panel targets and template variable queries.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let q = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or_default();
        // Grafana's label_values(SELECTOR, LABEL): the selector is PromQL.
        let q = match q.strip_prefix("label_values(") {
            Some(rest) => rest[..rest.rfind(',').expect("label_values(selector, label)")].into(),
            None => q.to_string(),
        };
        if !q.is_empty() {
            out.push(q);
        }
    }
    out
}

/// The `expr` of every rule in a Prometheus rules file (as written in deploy/: `expr: ONE LINE`
/// or `expr: |` followed by a more indented block).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value == "|" || value == ">" {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(block.join("\n"));
        } else {
            out.push(value.to_string());
        }
    }
    out
}

/// Metric name -> label names, from a Prometheus text exposition.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap();
        let labels = out.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            let body = &line[end + 1..line.rfind('}').unwrap()];
            // Values never hold `="` inside here: swarmd's label values are plain words.
            for pair in body.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string());
                }
            }
        }
    }
    out
}

/// Checks `queries` against the exposition: each selector names an exported metric (or `up`,
/// which Prometheus adds per target), with label matchers on labels it has (or the target's
/// `job` and `instance`), and each grouping label is one of the expression's metrics' labels.
fn check_queries(
    what: &str,
    queries: &[String],
    metrics: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<String> {
    let target_labels: BTreeSet<String> = ["job", "instance"].map(String::from).into();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for q in queries {
        let (selectors, grouping) = parse_promql(q);
        if selectors.is_empty() {
            problems.push(format!("no metric in {q:?}"));
        }
        let mut available = target_labels.clone();
        for s in &selectors {
            used.insert(s.metric.clone());
            let labels = match metrics.get(&s.metric) {
                Some(l) => l,
                None if s.metric == "up" => &BTreeSet::new(),
                None => {
                    problems.push(format!("{} is not exported (in {q:?})", s.metric));
                    continue;
                }
            };
            available.extend(labels.iter().cloned());
            for l in &s.labels {
                if !labels.contains(l) && !target_labels.contains(l) {
                    problems.push(format!("{} has no label {l} (in {q:?})", s.metric));
                }
            }
        }
        for l in &grouping {
            if !available.contains(l) {
                problems.push(format!("no metric of {q:?} has the label {l}"));
            }
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    used
}

const TOKEN: &str = "deploy-test-admin-token-0123";

/// One admin API call: (status, JSON body or Null).
async fn api(
    admin: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = Conn::open(admin).await.send_raw(req.as_bytes()).await;
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, value)
}

/// Allow-lists `IH` and creates a user; returns the passkey.
async fn allow_and_user(admin: SocketAddr, token: &str, name: &str) -> String {
    let (status, v) = api(
        admin,
        token,
        "PUT",
        &format!("/api/v1/torrents/{}", swarmd_proto::InfoHash(IH)),
        Some(json!({ "name": "deploy.iso" })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api(
        admin,
        token,
        "POST",
        "/api/v1/users",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v["passkey"]["key"].as_str().unwrap().to_string()
}

async fn announce(http: SocketAddr, key: &str, peer: u8, port: u16, left: u64) -> Reply {
    let target = format!(
        "/{key}/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&compact=1",
        enc(&IH),
        enc(&[peer; 20]),
    );
    get(http, &target).await
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_exported_metrics() {
    // A live private-mode swarmd (every metric family registered), after an announce, a
    // refused announce and a flush, so labelled series exist.
    let dir = temp_dir("metrics");
    let mut c = test_config();
    c.access.mode = Mode::Private;
    c.access.database = dir.join("swarmd.db").display().to_string();
    c.admin.token = TOKEN.into();
    let s = TestServer::start(c).await;
    let (admin, http) = (s.admin(), s.http_v4());
    let key = allow_and_user(admin, TOKEN, "alice").await;
    assert_eq!(failure(&announce(http, &key, 1, 7001, 0).await), None);
    assert!(
        failure(&announce(http, "0123456789abcdef0123456789abcdef", 2, 7002, 5).await).is_some()
    );
    let (status, v) = api(admin, TOKEN, "POST", "/api/v1/flush", None).await;
    assert_eq!(status, 200, "{v}");
    let scrape = get(admin, "/metrics").await;
    assert_eq!(scrape.status, 200);
    let metrics = exported(&scrape.text());
    s.running.stop().await;
    assert!(metrics.contains_key("swarmd_private_last_flush_timestamp_seconds"));
    assert!(metrics["swarmd_peers"].contains("ip_version"));

    // The dashboard: valid JSON, its data source the provisioned one, every query checked.
    let dashboard: Value = serde_json::from_str(&read("grafana/dashboards/swarmd.json"))
        .expect("the dashboard is valid JSON");
    let datasource = read("grafana/provisioning/datasources/prometheus.yml");
    let uid = datasource
        .lines()
        .find_map(|l| l.trim().strip_prefix("uid:"))
        .expect("the data source has a uid")
        .trim();
    let mut panel_ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            panel_ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
        }
    }
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 30, "only {} queries found", queries.len());
    let used = check_queries("deploy/grafana/dashboards/swarmd.json", &queries, &metrics);
    // What the issue asks the dashboard to show.
    for m in [
        "swarmd_requests_total",
        "swarmd_request_duration_seconds_bucket",
        "swarmd_torrents",
        "swarmd_peers",
        "swarmd_dht_nodes",
        "swarmd_dht_queries_sent_total",
        "swarmd_private_last_flush_timestamp_seconds",
        "swarmd_private_pending_records",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(m), "the dashboard does not show {m}");
    }
    // Grafana loads it from the folder compose.yaml mounts.
    let provider = read("grafana/provisioning/dashboards/swarmd.yml");
    let path = provider
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .unwrap()
        .trim();
    assert!(read("compose.yaml").contains(&format!("./grafana/dashboards:{path}:ro")));

    // The alert rules.
    let alerts = read("prometheus/alerts.yml");
    let exprs = rule_exprs(&alerts);
    let rules = alerts
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(exprs.len(), rules, "one expr per alert rule");
    assert!(rules >= 6);
    let used = check_queries("deploy/prometheus/alerts.yml", &exprs, &metrics);
    for m in [
        "up",
        "swarmd_requests_total",
        "swarmd_private_last_flush_timestamp_seconds",
        "swarmd_private_flushes_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(m), "no alert on {m}");
    }
}

// ---------------------------------------------------------------------------------------------
// SIGHUP

#[tokio::test]
async fn sighup_rotates_the_token_file_and_keeps_peers() {
    let dir = temp_dir("sighup");
    let token_file = dir.join("admin-token");
    let (a, b) = ("token-a-0123456789abcdef", "token-b-fedcba9876543210");
    std::fs::write(&token_file, format!("{a}\n")).unwrap();
    let (db, tf) = (
        dir.join("swarmd.db").display().to_string(),
        token_file.display().to_string(),
    );
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
            ("SWARMD__ADMIN__TOKEN_FILE", &tf),
        ],
    );
    let (http, admin) = (s.addr("http tracker"), s.addr("admin"));
    wait_for_signal_handlers(s.child.id());

    let key = allow_and_user(admin, a, "alice").await;
    let r = announce(http, &key, 1, 7001, 0).await;
    assert_eq!(failure(&r), None);
    assert_eq!(api(admin, b, "GET", "/api/v1/stats", None).await.0, 401);

    // Rotate as an operator would: write the new token beside, rename it over, SIGHUP.
    let fresh = dir.join("admin-token.new");
    std::fs::write(&fresh, format!("{b}\n")).unwrap();
    std::fs::rename(&fresh, &token_file).unwrap();
    s.signal("HUP");
    s.wait_line("reloaded the admin token and the access policy");

    assert_eq!(api(admin, a, "GET", "/api/v1/stats", None).await.0, 401);
    let (status, stats) = api(admin, b, "GET", "/api/v1/stats", None).await;
    assert_eq!(status, 200, "{stats}");
    // The seeder announced before the reload is still in the swarm: a leecher is given it.
    let r = announce(http, &key, 2, 7002, 100).await;
    assert_eq!(failure(&r), None);
    let d = r.bencode();
    assert_eq!(int(&d, "complete"), 1);
    assert_eq!(
        peers_v4(bytes(&d, "peers")),
        ["127.0.0.1:7001".parse::<SocketAddr>().unwrap()]
    );

    // A reload that fails (the file is gone) keeps the current token and says so.
    std::fs::remove_file(&token_file).unwrap();
    s.signal("HUP");
    s.wait_line("reload failed; keeping the previous state");
    assert_eq!(api(admin, b, "GET", "/api/v1/stats", None).await.0, 200);

    s.signal("TERM");
    assert!(s.wait_exit(Duration::from_secs(20)).success());
}
