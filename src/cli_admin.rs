//! `swarmd admin ...`: a command-line client of the admin REST API (users, passkeys, the allow
//! list, client rules, statistics), for operators who would rather not hand-write curl calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use swarmd_proto::InfoHash;

/// Options shared by every `admin` command.
#[derive(Args, Debug)]
pub(crate) struct AdminArgs {
    /// The admin listener's base URL.
    #[arg(
        long,
        env = "SWARMD_ADMIN_URL",
        default_value = "http://127.0.0.1:6970"
    )]
    url: String,
    /// The API's bearer token (`admin.token`).
    #[arg(long, env = "SWARMD_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Mode, access-policy state and registry totals.
    Stats,
    /// Users: create (prints the passkey and announce URLs), list, show, disable, enable.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Passkeys: issue another, rotate (revoke all and issue one), revoke.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The allow list: allow (a .torrent file or an info hash), remove, list, show.
    Torrent {
        #[command(subcommand)]
        action: TorrentAction,
    },
    /// Client rules on peer_id prefixes: allow, deny, remove, list.
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Write pending accounting to the database now.
    Flush,
    /// Re-read the token file and the database's users, keys, allow list and rules (as SIGHUP).
    Reload,
}

#[derive(Subcommand, Debug)]
enum UserAction {
    /// Create a user; prints its passkey and personal announce URLs.
    Create {
        /// A unique name.
        name: String,
        /// Expiry of the passkey, in UNIX seconds.
        #[arg(long, value_name = "UNIX_SECS")]
        expires_at: Option<i64>,
    },
    /// List users.
    List,
    /// Show a user's passkeys and transfer records.
    Show {
        /// User id or name.
        user: String,
    },
    /// Refuse the user's announces (and drop its peers) until enabled again.
    Disable {
        /// User id or name.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User id or name.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeyAction {
    /// Issue an additional passkey.
    Issue {
        /// User id or name.
        user: String,
        /// Expiry, in UNIX seconds.
        #[arg(long, value_name = "UNIX_SECS")]
        expires_at: Option<i64>,
    },
    /// Revoke every active passkey of the user and issue a new one.
    Rotate {
        /// User id or name.
        user: String,
        /// Expiry, in UNIX seconds.
        #[arg(long, value_name = "UNIX_SECS")]
        expires_at: Option<i64>,
    },
    /// Revoke one passkey.
    Revoke {
        /// The passkey.
        passkey: String,
    },
}

#[derive(Subcommand, Debug)]
enum TorrentAction {
    /// Put a torrent on the allow list (or change its flags), or many with --hash-file.
    Allow {
        /// A .torrent file, or an info hash (40 hex characters).
        #[arg(required_unless_present = "hash_file")]
        target: Option<String>,
        /// Allow every info hash in FILE (hex, one per line; blank lines and # comments
        /// skipped), with the same flags, in batches of one transaction each.
        #[arg(long, value_name = "FILE", conflicts_with = "target")]
        hash_file: Option<PathBuf>,
        /// A name to show (defaults to the .torrent's name).
        #[arg(long)]
        name: Option<String>,
        /// Require a passkey even in listed mode and hide it from the DHT (a .torrent with
        /// private=1 sets this by itself).
        #[arg(long)]
        private: bool,
        /// Downloads on this torrent do not count (download multiplier 0).
        #[arg(long, conflicts_with = "download_multiplier")]
        freeleech: bool,
        /// Multiplier of credited upload.
        #[arg(long, default_value_t = 1.0)]
        upload_multiplier: f64,
        /// Multiplier of credited download.
        #[arg(long)]
        download_multiplier: Option<f64>,
    },
    /// Remove a torrent from the allow list (its history is kept).
    Remove {
        /// A .torrent file or an info hash.
        target: String,
    },
    /// List the allow list.
    List,
    /// Show a torrent's flags, totals and swarm.
    Show {
        /// A .torrent file or an info hash.
        target: String,
    },
}

#[derive(Subcommand, Debug)]
enum ClientAction {
    /// Allow peer ids starting with PREFIX (once any allow rule exists, others are refused).
    Allow {
        /// Peer id prefix, such as -TR4 or -qB.
        #[arg(allow_hyphen_values = true)]
        prefix: String,
        /// A note for operators.
        #[arg(long)]
        note: Option<String>,
    },
    /// Refuse peer ids starting with PREFIX.
    Deny {
        /// Peer id prefix.
        #[arg(allow_hyphen_values = true)]
        prefix: String,
        /// A note for operators.
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove a rule.
    Remove {
        /// Peer id prefix.
        #[arg(allow_hyphen_values = true)]
        prefix: String,
    },
    /// List the rules.
    List,
}

/// A connection's worth of API calls.
struct Api {
    base: Uri,
    token: String,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.runtime
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    self.send(method.clone(), path, body),
                )
                .await
            })
            .with_context(|| format!("{method} {path}: no answer within 30 s"))?
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let authority = self
            .base
            .authority()
            .context("the admin URL has no host")?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((authority.host(), port))
            .await
            .with_context(|| format!("cannot connect to the admin listener at {}", self.base))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake failed")?;
        tokio::spawn(conn);
        let prefix = self.base.path().trim_end_matches('/');
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("{prefix}{path}"))
            .header(HOST, authority.as_str())
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let resp = sender.send_request(req).await.context("request failed")?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&bytes).trim().to_string())
            })
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_string);
        match status {
            StatusCode::UNAUTHORIZED => bail!("{message} (pass --token or SWARMD_ADMIN_TOKEN)"),
            _ => bail!("{status}: {message}"),
        }
    }

    /// A user's id from an id or a name.
    fn user_id(&self, user: &str) -> anyhow::Result<i64> {
        if let Ok(id) = user.parse() {
            return Ok(id);
        }
        let list = self.call(
            Method::GET,
            &format!("/api/v1/users?name={}", encode(user)),
            None,
        )?;
        list.as_array()
            .and_then(|a| a.first())
            .and_then(|u| u["id"].as_i64())
            .with_context(|| format!("no user named {user:?}"))
    }
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    swarmd_proto::http::percent_encode_into(s.as_bytes(), &mut out);
    out
}

/// The info hash and metainfo-derived defaults (name, private flag) of a target.
fn target_hash(target: &str) -> anyhow::Result<(InfoHash, Option<String>, bool)> {
    if let Ok(ih) = target.parse::<InfoHash>() {
        if !Path::new(target).exists() {
            return Ok((ih, None, false));
        }
    }
    let bytes = std::fs::read(target)
        .with_context(|| format!("{target} is neither an info hash nor a readable file"))?;
    let m = swarmd_client_core::Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{target} is not a valid .torrent"))?;
    Ok((m.info_hash(), Some(m.name().to_string()), m.private()))
}

fn token(args: &AdminArgs) -> anyhow::Result<String> {
    if let Some(t) = &args.token {
        return Ok(t.trim().to_string());
    }
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(text.trim().to_string());
    }
    bail!("no admin token: pass --token, --token-file or set SWARMD_ADMIN_TOKEN")
}

/// Runs one `swarmd admin` command.
pub(crate) fn run(args: AdminArgs) -> anyhow::Result<()> {
    let base: Uri = args
        .url
        .parse()
        .with_context(|| format!("bad --url {:?}", args.url))?;
    if base.scheme_str() != Some("http") {
        bail!("--url must be http://HOST:PORT (the admin listener speaks plain HTTP on a private address)");
    }
    let api = Api {
        base,
        token: token(&args)?,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    let json = args.json;
    let (value, summary): (Value, fn(&Value) -> String) = match args.command {
        AdminCommand::Stats => (api.call(Method::GET, "/api/v1/stats", None)?, show_stats),
        AdminCommand::Flush => (api.call(Method::POST, "/api/v1/flush", None)?, |v| {
            format!("flushed {} records", v["records"])
        }),
        AdminCommand::Reload => (api.call(Method::POST, "/api/v1/reload", None)?, |_| {
            "reloaded".to_string()
        }),
        AdminCommand::User { action } => user(&api, action)?,
        AdminCommand::Key { action } => key(&api, action)?,
        AdminCommand::Torrent { action } => torrent(&api, action)?,
        AdminCommand::Client { action } => client(&api, action)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let text = summary(&value);
        if !text.is_empty() {
            println!("{text}");
        }
    }
    Ok(())
}

type Outcome = (Value, fn(&Value) -> String);

fn user(api: &Api, action: UserAction) -> anyhow::Result<Outcome> {
    Ok(match action {
        UserAction::Create { name, expires_at } => (
            api.call(
                Method::POST,
                "/api/v1/users",
                Some(json!({ "name": name, "expires_at": expires_at })),
            )?,
            |v| {
                format!(
                    "user     {} (id {})\n{}",
                    str_of(&v["user"]["name"]),
                    v["user"]["id"],
                    show_key(v)
                )
            },
        ),
        UserAction::List => (api.call(Method::GET, "/api/v1/users", None)?, |v| {
            table(v, |u| {
                format!(
                    "{:>6}  {:<24} {}",
                    u["id"],
                    str_of(&u["name"]),
                    if u["disabled"] == true {
                        "disabled"
                    } else {
                        ""
                    }
                )
            })
        }),
        UserAction::Show { user } => {
            let id = api.user_id(&user)?;
            (
                api.call(Method::GET, &format!("/api/v1/users/{id}"), None)?,
                show_user,
            )
        }
        UserAction::Disable { user } => set_disabled(api, &user, true)?,
        UserAction::Enable { user } => set_disabled(api, &user, false)?,
    })
}

fn set_disabled(api: &Api, user: &str, disabled: bool) -> anyhow::Result<Outcome> {
    let id = api.user_id(user)?;
    Ok((
        api.call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({ "disabled": disabled })),
        )?,
        |v| {
            format!(
                "user {} (id {}) is {}",
                str_of(&v["name"]),
                v["id"],
                if v["disabled"] == true {
                    "disabled"
                } else {
                    "enabled"
                }
            )
        },
    ))
}

fn key(api: &Api, action: KeyAction) -> anyhow::Result<Outcome> {
    Ok(match action {
        KeyAction::Issue { user, expires_at } => {
            let id = api.user_id(&user)?;
            (
                api.call(
                    Method::POST,
                    &format!("/api/v1/users/{id}/passkeys"),
                    Some(json!({ "expires_at": expires_at })),
                )?,
                show_key,
            )
        }
        KeyAction::Rotate { user, expires_at } => {
            let id = api.user_id(&user)?;
            (
                api.call(
                    Method::POST,
                    &format!("/api/v1/users/{id}/passkeys/rotate"),
                    Some(json!({ "expires_at": expires_at })),
                )?,
                show_key,
            )
        }
        KeyAction::Revoke { passkey } => (
            api.call(
                Method::DELETE,
                &format!("/api/v1/passkeys/{}", encode(&passkey)),
                None,
            )?,
            |v| format!("passkey {} is {}", str_of(&v["key"]), str_of(&v["state"])),
        ),
    })
}

fn torrent(api: &Api, action: TorrentAction) -> anyhow::Result<Outcome> {
    Ok(match action {
        TorrentAction::Allow {
            target,
            hash_file,
            name,
            private,
            freeleech,
            upload_multiplier,
            download_multiplier,
        } => {
            let download = if freeleech {
                0.0
            } else {
                download_multiplier.unwrap_or(1.0)
            };
            if let Some(file) = hash_file {
                let n = allow_file(api, &file, private, upload_multiplier, download)?;
                return Ok((json!({ "allowed": n }), |v| {
                    format!("allowed {} torrents", v["allowed"])
                }));
            }
            let target = target.unwrap_or_default();
            let (ih, file_name, file_private) = target_hash(&target)?;
            (
                api.call(
                    Method::PUT,
                    &format!("/api/v1/torrents/{ih}"),
                    Some(json!({
                        "name": name.or(file_name),
                        "private": private || file_private,
                        "upload_multiplier": upload_multiplier,
                        "download_multiplier": download,
                    })),
                )?,
                |v| format!("allowed {}", torrent_line(v)),
            )
        }
        TorrentAction::Remove { target } => {
            let (ih, _, _) = target_hash(&target)?;
            api.call(Method::DELETE, &format!("/api/v1/torrents/{ih}"), None)?;
            (json!({ "removed": ih.to_string() }), |v| {
                format!("removed {}", str_of(&v["removed"]))
            })
        }
        TorrentAction::List => (api.call(Method::GET, "/api/v1/torrents", None)?, |v| {
            table(v, torrent_line)
        }),
        TorrentAction::Show { target } => {
            let (ih, _, _) = target_hash(&target)?;
            (
                api.call(Method::GET, &format!("/api/v1/torrents/{ih}"), None)?,
                show_torrent,
            )
        }
    })
}

/// Allows every hash listed in `file`, 10,000 per request (one transaction each).
fn allow_file(
    api: &Api,
    file: &Path,
    private: bool,
    upload_multiplier: f64,
    download_multiplier: f64,
) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut hashes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ih: InfoHash = line.parse().map_err(|_| {
            anyhow::anyhow!("{}:{}: not an info hash: {line:?}", file.display(), i + 1)
        })?;
        hashes.push(ih);
    }
    let mut allowed = 0;
    for chunk in hashes.chunks(10_000) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|ih| {
                json!({
                    "info_hash": ih.to_string(),
                    "private": private,
                    "upload_multiplier": upload_multiplier,
                    "download_multiplier": download_multiplier,
                })
            })
            .collect();
        let v = api.call(Method::POST, "/api/v1/torrents", Some(Value::Array(body)))?;
        allowed += v["allowed"].as_u64().unwrap_or(0) as usize;
    }
    Ok(allowed)
}

fn client(api: &Api, action: ClientAction) -> anyhow::Result<Outcome> {
    let put = |prefix: &str, action: &str, note: Option<String>| {
        api.call(
            Method::PUT,
            &format!("/api/v1/clients/{}", encode(prefix)),
            Some(json!({ "action": action, "note": note })),
        )
    };
    Ok(match action {
        ClientAction::Allow { prefix, note } => (put(&prefix, "allow", note)?, rule_line),
        ClientAction::Deny { prefix, note } => (put(&prefix, "deny", note)?, rule_line),
        ClientAction::Remove { prefix } => {
            api.call(
                Method::DELETE,
                &format!("/api/v1/clients/{}", encode(&prefix)),
                None,
            )?;
            (json!({ "removed": prefix }), |v| {
                format!("removed rule {}", str_of(&v["removed"]))
            })
        }
        ClientAction::List => (api.call(Method::GET, "/api/v1/clients", None)?, |v| {
            table(v, rule_line)
        }),
    })
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn table(v: &Value, line: fn(&Value) -> String) -> String {
    match v.as_array() {
        Some(rows) if rows.is_empty() => "(none)".into(),
        Some(rows) => rows.iter().map(line).collect::<Vec<_>>().join("\n"),
        None => v.to_string(),
    }
}

fn show_key(v: &Value) -> String {
    let key = &v["passkey"];
    let mut out = format!("passkey  {}", str_of(&key["key"]));
    if let Some(exp) = key["expires_at"].as_i64() {
        out += &format!(" (expires at {exp})");
    }
    match v["announce_urls"].as_array() {
        Some(urls) if !urls.is_empty() => {
            for u in urls {
                out += &format!("\nannounce {}", str_of(u));
            }
        }
        _ => {
            out += &format!(
                "\nannounce http://YOUR-TRACKER:PORT/{}/announce (set access.announce_urls to print full URLs)",
                str_of(&key["key"])
            );
        }
    }
    out
}

fn bytes(v: &Value) -> String {
    let n = v.as_u64().unwrap_or(0) as f64;
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = n;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{x:.2} {}", UNITS[i])
    }
}

fn totals_line(t: &Value) -> String {
    format!(
        "up {} (raw {}), down {} (raw {}), seeded {} s, completed {}",
        bytes(&t["uploaded"]),
        bytes(&t["raw_uploaded"]),
        bytes(&t["downloaded"]),
        bytes(&t["raw_downloaded"]),
        t["seed_secs"],
        t["completed"]
    )
}

fn show_user(v: &Value) -> String {
    let mut out = format!(
        "user     {} (id {}){}\ntotals   {}",
        str_of(&v["name"]),
        v["id"],
        if v["disabled"] == true {
            ", disabled"
        } else {
            ""
        },
        totals_line(&v["totals"])
    );
    for k in v["passkeys"].as_array().into_iter().flatten() {
        out += &format!("\npasskey  {} {}", str_of(&k["key"]), str_of(&k["state"]));
    }
    for u in v["announce_urls"].as_array().into_iter().flatten() {
        out += &format!("\nannounce {}", str_of(u));
    }
    for t in v["torrents"].as_array().into_iter().flatten() {
        out += &format!(
            "\ntorrent  {} {}: {}",
            str_of(&t["info_hash"]),
            str_of(&t["name"]),
            totals_line(t)
        );
    }
    out
}

fn torrent_line(t: &Value) -> String {
    format!(
        "{} {}{} up x{} down x{}",
        str_of(&t["info_hash"]),
        str_of(&t["name"]),
        if t["private"] == true {
            " [private]"
        } else {
            ""
        },
        t["upload_multiplier"],
        t["download_multiplier"]
    )
}

fn show_torrent(v: &Value) -> String {
    let mut out = format!(
        "{}\nswarm    {} seeders, {} leechers, {} completed\ntotals   {}",
        torrent_line(v),
        v["swarm"]["seeders"],
        v["swarm"]["leechers"],
        v["swarm"]["completed"],
        totals_line(&v["totals"])
    );
    for u in v["users"].as_array().into_iter().flatten() {
        out += &format!(
            "\nuser     {} (id {}): {}",
            str_of(&u["name"]),
            u["user_id"],
            totals_line(u)
        );
    }
    out
}

fn rule_line(r: &Value) -> String {
    format!(
        "{:<6} {:<20} {}",
        str_of(&r["action"]),
        str_of(&r["prefix"]),
        r["note"].as_str().unwrap_or("")
    )
}

fn show_stats(v: &Value) -> String {
    let r = &v["registry"];
    let mut out = format!(
        "mode     {}\nswarms   {} torrents, {} seeders, {} leechers",
        str_of(&v["mode"]),
        r["torrents"],
        r["seeders"],
        r["leechers"]
    );
    let a = &v["access"];
    if a.is_object() {
        out += &format!(
            "\naccess   {} users, {} active keys, {} torrents, {} client rules, {} sessions\nflush    {} pending, {} flushes, {} errors, last at {}",
            a["users"], a["active_keys"], a["torrents"], a["client_rules"], a["sessions"],
            a["pending_records"], a["flushes"], a["flush_errors"], str_of(&a["last_flush_at"])
        );
    }
    out
}
