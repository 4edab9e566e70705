//! The serde model of private mode: configuration, users, passkeys, torrents, transfer totals,
//! client rules and statistics, as the admin API shows them.
//!
//! Times are `i64` seconds on the server clock (UNIX time in production). Info hashes are
//! 40-character lowercase hex strings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::PrivateError;

/// The tracker's access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anything announced is tracked; this crate is not used.
    #[default]
    Public,
    /// Only allow-listed info hashes are tracked; a passkey is needed only for torrents flagged
    /// private.
    Listed,
    /// Only allow-listed info hashes, and every announce and scrape needs a valid passkey.
    Private,
}

impl Mode {
    /// The mode's name as written in configuration: `public`, `listed` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Public => "public",
            Mode::Listed => "listed",
            Mode::Private => "private",
        }
    }
}

/// Settings of the private-mode policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateConfig {
    /// `Listed` or `Private` (the policy refuses to open in `Public` mode).
    pub mode: Mode,
    /// The SQLite file, created if missing; `":memory:"` for a throwaway database (tests).
    pub database: PathBuf,
    /// Seconds between the binary's calls to [`PrivatePolicy::flush`](crate::PrivatePolicy::flush).
    pub flush_interval_secs: u32,
    /// A transfer delta above this rate (bytes per second since the session's previous announce)
    /// is absurd and discarded.
    pub max_rate_bytes_per_sec: u64,
    /// Peer sessions not seen for longer than this are forgotten at the next flush; also the
    /// most seeding time one announce can credit. Use the registry's peer timeout.
    pub peer_timeout_secs: u32,
}

impl PrivateConfig {
    /// A configuration with the given mode and database and these defaults: flush every 5 s,
    /// deltas above 2 GiB/s absurd, sessions forgotten after 2700 s (45 minutes).
    pub fn new(mode: Mode, database: impl Into<PathBuf>) -> Self {
        Self {
            mode,
            database: database.into(),
            flush_interval_secs: 5,
            max_rate_bytes_per_sec: 2 << 30,
            peer_timeout_secs: 2700,
        }
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id (stable, never reused).
    pub id: i64,
    /// The unique name: 1 to 64 characters, no control characters.
    pub name: String,
    /// When the account was created.
    pub created_at: i64,
    /// A disabled user's passkeys are refused ("account disabled").
    pub disabled: bool,
}

/// The state of a passkey at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Usable.
    Active,
    /// Past its `expires_at`.
    Expired,
    /// Revoked by an operator.
    Revoked,
}

impl KeyState {
    /// The state of a key with these times at `now` (revocation wins over expiry).
    pub fn at(now: i64, expires_at: Option<i64>, revoked_at: Option<i64>) -> Self {
        if revoked_at.is_some() {
            KeyState::Revoked
        } else if expires_at.is_some_and(|e| e <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

/// A user's personal passkey: 32 characters of `[0-9a-z]` in the announce URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    /// The key's id.
    pub id: i64,
    /// The key itself.
    pub key: String,
    /// Its owner.
    pub user_id: i64,
    /// When it was issued.
    pub created_at: i64,
    /// When it stops working (`expires_at <= now` is expired), if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Its state when this value was read.
    pub state: KeyState,
}

/// Transfer totals, of one user on one torrent or summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Credited upload: raw bytes times the torrent's upload multiplier.
    pub uploaded: u64,
    /// Credited download: raw bytes times the torrent's download multiplier (0 = freeleech).
    pub downloaded: u64,
    /// Uploaded bytes as reported (absurd deltas excluded).
    pub raw_uploaded: u64,
    /// Downloaded bytes as reported (absurd deltas excluded).
    pub raw_downloaded: u64,
    /// Seconds spent seeding.
    pub seed_secs: u64,
    /// Completed downloads (`event=completed`).
    pub completed: u64,
}

impl Totals {
    /// Adds `other` to `self`, saturating.
    pub fn add(&mut self, other: &Totals) {
        self.uploaded = self.uploaded.saturating_add(other.uploaded);
        self.downloaded = self.downloaded.saturating_add(other.downloaded);
        self.raw_uploaded = self.raw_uploaded.saturating_add(other.raw_uploaded);
        self.raw_downloaded = self.raw_downloaded.saturating_add(other.raw_downloaded);
        self.seed_secs = self.seed_secs.saturating_add(other.seed_secs);
        self.completed = self.completed.saturating_add(other.completed);
    }
}

/// One user's transfer on one torrent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// The torrent's info hash (40 lowercase hex digits).
    pub info_hash: String,
    /// The torrent's name, if it has one.
    pub name: Option<String>,
    /// The totals.
    #[serde(flatten)]
    pub totals: Totals,
    /// When the user last announced it.
    pub last_announce: i64,
}

/// A user with passkeys and transfer history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDetail {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Every passkey ever issued to the user, by id.
    pub passkeys: Vec<Passkey>,
    /// The sum over `torrents`.
    pub totals: Totals,
    /// Per-torrent transfers, by torrent id (removed torrents included).
    pub torrents: Vec<TransferRecord>,
}

/// How a torrent is allow-listed (the body of an "allow torrent" request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TorrentOptions {
    /// A display name.
    pub name: Option<String>,
    /// BEP 27 private: a passkey is needed even in `listed` mode, and the DHT never serves it.
    pub private: bool,
    /// Multiplier of credited upload, finite, 0 to 100 (default 1).
    pub upload_multiplier: f64,
    /// Multiplier of credited download, finite, 0 to 100 (default 1; 0 is freeleech).
    pub download_multiplier: f64,
}

impl Default for TorrentOptions {
    fn default() -> Self {
        Self {
            name: None,
            private: false,
            upload_multiplier: 1.0,
            download_multiplier: 1.0,
        }
    }
}

/// Longest torrent name accepted, in characters.
const MAX_TORRENT_NAME: usize = 1024;

impl TorrentOptions {
    /// Checks the multipliers (finite, 0..=100) and the name (at most 1024 characters).
    pub fn validate(&self) -> Result<(), PrivateError> {
        for (what, m) in [
            ("upload_multiplier", self.upload_multiplier),
            ("download_multiplier", self.download_multiplier),
        ] {
            if !m.is_finite() || !(0.0..=100.0).contains(&m) {
                return Err(PrivateError::Invalid(format!(
                    "{what} must be a number from 0 to 100, got {m}"
                )));
            }
        }
        if let Some(name) = &self.name {
            if name.chars().count() > MAX_TORRENT_NAME {
                return Err(PrivateError::Invalid(format!(
                    "torrent name is longer than {MAX_TORRENT_NAME} characters"
                )));
            }
        }
        Ok(())
    }
}

/// An allow-listed torrent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Torrent {
    /// The info hash (40 lowercase hex digits).
    pub info_hash: String,
    /// A display name.
    pub name: Option<String>,
    /// BEP 27 private flag.
    pub private: bool,
    /// Multiplier of credited upload.
    pub upload_multiplier: f64,
    /// Multiplier of credited download (0 = freeleech).
    pub download_multiplier: f64,
    /// When it was first allow-listed.
    pub added_at: i64,
}

/// One user's transfer on a given torrent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTransfer {
    /// The user's id.
    pub user_id: i64,
    /// The user's name.
    pub name: String,
    /// The totals.
    #[serde(flatten)]
    pub totals: Totals,
    /// When the user last announced the torrent.
    pub last_announce: i64,
}

/// A torrent with its per-user transfers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorrentDetail {
    /// The torrent.
    #[serde(flatten)]
    pub torrent: Torrent,
    /// The sum over `users`.
    pub totals: Totals,
    /// Per-user transfers, by user id.
    pub users: Vec<UserTransfer>,
}

/// What a client rule does to matching peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAction {
    /// Matching clients may announce. Once any allow rule exists, only matching clients may.
    Allow,
    /// Matching clients are refused, whatever the allow rules say.
    Deny,
}

impl ClientAction {
    /// `allow` or `deny`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAction::Allow => "allow",
            ClientAction::Deny => "deny",
        }
    }
}

/// A rule on announcing clients, matched against the first bytes of the peer id
/// (e.g. `-qB` for qBittorrent, `-TR2` for Transmission 2.x).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRule {
    /// 1 to 20 printable ASCII bytes.
    pub prefix: String,
    /// Allow or deny.
    pub action: ClientAction,
    /// A free-form note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Longest client-rule prefix, in bytes (a peer id's length).
pub(crate) const MAX_PREFIX: usize = 20;

impl ClientRule {
    /// Checks the prefix: 1 to 20 printable ASCII bytes (space to `~`).
    pub fn validate(&self) -> Result<(), PrivateError> {
        let p = self.prefix.as_bytes();
        if p.is_empty() || p.len() > MAX_PREFIX {
            return Err(PrivateError::Invalid(format!(
                "client rule prefix must be 1 to {MAX_PREFIX} bytes long"
            )));
        }
        if !p.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(PrivateError::Invalid(
                "client rule prefix must be printable ASCII".into(),
            ));
        }
        Ok(())
    }
}

/// Longest user name, in characters.
pub(crate) const MAX_USER_NAME: usize = 64;

/// Checks a user name: 1 to 64 characters, no control characters.
pub(crate) fn validate_user_name(name: &str) -> Result<(), PrivateError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_USER_NAME {
        return Err(PrivateError::Invalid(format!(
            "user name must be 1 to {MAX_USER_NAME} characters long"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(PrivateError::Invalid(
            "user name must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// A cheap in-memory snapshot of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The mode.
    pub mode: Mode,
    /// Users (enabled and disabled).
    pub users: u64,
    /// Passkeys neither revoked nor expired.
    pub active_keys: u64,
    /// Allow-listed torrents.
    pub torrents: u64,
    /// Client rules.
    pub client_rules: u64,
    /// Peer sessions remembered (one per user, torrent and peer id).
    pub sessions: u64,
    /// Accounting records waiting for the next flush: one per peer session with unwritten
    /// accounting, and those of sessions that ended (the flush merges them per user and
    /// torrent).
    pub pending_records: u64,
    /// When the last successful flush ran, if one has.
    pub last_flush_at: Option<i64>,
    /// Successful flushes since start.
    pub flushes: u64,
    /// Failed flushes since start.
    pub flush_errors: u64,
}

/// What one flush wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlushStats {
    /// Per-user-and-torrent accounting records written.
    pub records: usize,
    /// Peer-session baselines written.
    pub sessions_written: usize,
    /// Peer sessions deleted: stopped, evicted, or idle longer than the peer timeout.
    pub sessions_removed: usize,
    /// Wall time the flush took.
    pub duration_secs: f64,
}
