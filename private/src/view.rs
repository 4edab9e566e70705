//! The in-memory view of users, passkeys, allow-listed torrents and client rules that the
//! request path consults (never the database), and the checks made against it.

use std::collections::HashMap;

use ahash::RandomState;
use rusqlite::Connection;
use swarmd_proto::{InfoHash, PeerId};

use crate::model::ClientAction;

/// Length of a passkey in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// Why a request is refused, with the exact text the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The info hash is not allow-listed.
    Unregistered,
    /// A client rule refuses the peer id.
    Client,
    /// A passkey is needed and none was given.
    MissingKey,
    /// The passkey is not known.
    UnknownKey,
    /// The passkey was revoked.
    RevokedKey,
    /// The passkey expired.
    ExpiredKey,
    /// The key's user is disabled.
    DisabledUser,
}

impl Denial {
    /// Every denial, in metric-handle order.
    pub(crate) const ALL: [Denial; 7] = [
        Denial::Unregistered,
        Denial::Client,
        Denial::MissingKey,
        Denial::UnknownKey,
        Denial::RevokedKey,
        Denial::ExpiredKey,
        Denial::DisabledUser,
    ];

    /// The reason shown to the client.
    pub(crate) const fn text(self) -> &'static str {
        match self {
            Denial::Unregistered => "unregistered torrent",
            Denial::Client => "client not allowed",
            Denial::MissingKey => "passkey required: use your personal announce URL",
            Denial::UnknownKey => "unknown passkey",
            Denial::RevokedKey => "passkey revoked",
            Denial::ExpiredKey => "passkey expired",
            Denial::DisabledUser => "account disabled",
        }
    }

    /// The `reason` label of `swarmd_private_denied_total`.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Denial::Unregistered => "unregistered",
            Denial::Client => "client",
            Denial::MissingKey => "missing_key",
            Denial::UnknownKey => "unknown_key",
            Denial::RevokedKey => "revoked_key",
            Denial::ExpiredKey => "expired_key",
            Denial::DisabledUser => "disabled_user",
        }
    }

    /// Index into [`Denial::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A user as the request path needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserEntry {
    pub(crate) disabled: bool,
}

/// A passkey as the request path needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyEntry {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked: bool,
}

impl KeyEntry {
    /// Neither revoked nor expired at `now`.
    pub(crate) fn is_active(&self, now: i64) -> bool {
        !self.revoked && self.expires_at.is_none_or(|e| e > now)
    }
}

/// An allow-listed torrent as the request path needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TorrentEntry {
    pub(crate) id: i64,
    pub(crate) private: bool,
    pub(crate) upload_multiplier: f64,
    pub(crate) download_multiplier: f64,
}

/// A client rule as matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleEntry {
    pub(crate) prefix: Box<[u8]>,
    pub(crate) action: ClientAction,
}

/// Everything the request path looks up, loaded from the database and kept in step by the
/// admin operations.
#[derive(Debug, Default)]
pub(crate) struct View {
    pub(crate) users: HashMap<i64, UserEntry, RandomState>,
    pub(crate) keys: HashMap<[u8; KEY_LEN], KeyEntry, RandomState>,
    /// Listed torrents only (removed ones are absent).
    pub(crate) torrents: HashMap<InfoHash, TorrentEntry, RandomState>,
    pub(crate) rules: Vec<RuleEntry>,
}

impl View {
    /// Reads the whole view from the database.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut view = View::default();
        let mut stmt = conn.prepare("SELECT id, disabled FROM users")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))?;
        for row in rows {
            let (id, disabled) = row?;
            view.users.insert(id, UserEntry { disabled });
        }
        let mut stmt = conn
            .prepare("SELECT id, key, user_id, expires_at, revoked_at IS NOT NULL FROM passkeys")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                KeyEntry {
                    id: r.get(0)?,
                    user_id: r.get(2)?,
                    expires_at: r.get(3)?,
                    revoked: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (key, entry) = row?;
            match <[u8; KEY_LEN]>::try_from(key.as_bytes()) {
                Ok(k) => {
                    view.keys.insert(k, entry);
                }
                Err(_) => tracing::warn!(key_id = entry.id, "ignoring a passkey of bad length"),
            }
        }
        let mut stmt = conn.prepare(
            "SELECT id, info_hash, private, upload_multiplier, download_multiplier
             FROM torrents WHERE removed_at IS NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(1)?,
                TorrentEntry {
                    id: r.get(0)?,
                    private: r.get(2)?,
                    upload_multiplier: r.get(3)?,
                    download_multiplier: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (hash, entry) = row?;
            if let Some(h) = InfoHash::from_slice(&hash) {
                view.torrents.insert(h, entry);
            }
        }
        let mut stmt = conn.prepare("SELECT prefix, action FROM client_rules")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (prefix, action) = row?;
            let action = if action == "deny" {
                ClientAction::Deny
            } else {
                ClientAction::Allow
            };
            view.set_rule(prefix.as_bytes(), action);
        }
        Ok(view)
    }

    /// Inserts or replaces the rule for `prefix`.
    pub(crate) fn set_rule(&mut self, prefix: &[u8], action: ClientAction) {
        match self.rules.iter_mut().find(|r| &*r.prefix == prefix) {
            Some(rule) => rule.action = action,
            None => self.rules.push(RuleEntry {
                prefix: prefix.into(),
                action,
            }),
        }
    }

    /// Removes the rule for `prefix`; true if there was one.
    pub(crate) fn remove_rule(&mut self, prefix: &[u8]) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| &*r.prefix != prefix);
        self.rules.len() != before
    }

    /// Client rules: refused if a deny rule matches, or if allow rules exist and none matches.
    pub(crate) fn client_allowed(&self, peer_id: &PeerId) -> bool {
        let mut any_allow = false;
        let mut allowed = false;
        for rule in &self.rules {
            let matches = peer_id.0.starts_with(&rule.prefix);
            match rule.action {
                ClientAction::Deny if matches => return false,
                ClientAction::Deny => {}
                ClientAction::Allow => {
                    any_allow = true;
                    allowed |= matches;
                }
            }
        }
        !any_allow || allowed
    }

    /// The passkey rules: `Ok(Some(key))` for a valid key, `Ok(None)` when none was presented
    /// and none is `required`. An empty credential counts as none.
    pub(crate) fn check_key(
        &self,
        passkey: Option<&[u8]>,
        required: bool,
        now: i64,
    ) -> Result<Option<&KeyEntry>, Denial> {
        let presented = match passkey {
            Some(p) if !p.is_empty() => p,
            _ if required => return Err(Denial::MissingKey),
            _ => return Ok(None),
        };
        let key = <&[u8; KEY_LEN]>::try_from(presented)
            .ok()
            .and_then(|k| self.keys.get(k))
            .ok_or(Denial::UnknownKey)?;
        if key.revoked {
            return Err(Denial::RevokedKey);
        }
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(Denial::ExpiredKey);
        }
        match self.users.get(&key.user_id) {
            None => Err(Denial::UnknownKey),
            Some(user) if user.disabled => Err(Denial::DisabledUser),
            Some(_) => Ok(Some(key)),
        }
    }

    /// Passkeys neither revoked nor expired at `now`.
    pub(crate) fn active_keys(&self, now: i64) -> u64 {
        self.keys.values().filter(|k| k.is_active(now)).count() as u64
    }
}
