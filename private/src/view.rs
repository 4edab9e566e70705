//! The in-memory view of users, passkeys and client rules that the request path consults
//! (never the database), and the checks made against it. Small (one entry per user and key),
//! so it stays hot in cache; the per-torrent state is in [`crate::torrents`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use ahash::RandomState;
use rusqlite::Connection;
use swarmd_proto::PeerId;

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
    /// The key's user as [`View::users`] has it (`None`: not known), copied here so a request
    /// makes one lookup, not two. [`View::insert_key`] and [`View::set_user`] keep it in step.
    pub(crate) user: Option<UserEntry>,
}

impl KeyEntry {
    /// Neither revoked nor expired at `now`.
    pub(crate) fn is_active(&self, now: i64) -> bool {
        !self.revoked && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A passkey as a map key. Compared in full, but hashed by its first and last 8 bytes only:
/// issued keys are random (8 characters of a 36-letter alphabet carry 41 bits), so this
/// spreads them as well as hashing all 32 bytes, for less work on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyBytes(pub(crate) [u8; KEY_LEN]);

impl KeyBytes {
    /// The key, if `bytes` has a passkey's length.
    pub(crate) fn new(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(Self)
    }
}

impl Hash for KeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_ne_bytes([a, b, c, d, e, f, g, h]));
        let [.., a, b, c, d, e, f, g, h] = self.0;
        state.write_u64(u64::from_ne_bytes([a, b, c, d, e, f, g, h]));
    }
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
    pub(crate) keys: HashMap<KeyBytes, KeyEntry, RandomState>,
    pub(crate) rules: Vec<RuleEntry>,
}

impl View {
    /// Reads the whole view (users, keys, client rules) from the database.
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
                    user: None,
                },
            ))
        })?;
        for row in rows {
            let (key, entry) = row?;
            match KeyBytes::new(key.as_bytes()) {
                Some(k) => view.insert_key(k, entry),
                None => tracing::warn!(key_id = entry.id, "ignoring a passkey of bad length"),
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

    /// Adds (or replaces) a key, with its user's standing as the view has it.
    pub(crate) fn insert_key(&mut self, bytes: KeyBytes, mut entry: KeyEntry) {
        entry.user = self.users.get(&entry.user_id).copied();
        self.keys.insert(bytes, entry);
    }

    /// Adds or updates a user, and the copy of its standing in each of its keys (a new user
    /// has none yet, so only a change pays for the walk over every key).
    pub(crate) fn set_user(&mut self, id: i64, user: UserEntry) {
        if self.users.insert(id, user).is_some() {
            for k in self.keys.values_mut().filter(|k| k.user_id == id) {
                k.user = Some(user);
            }
        }
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

    /// The passkey rules for a presented credential: `Ok(Some(key))` for a valid key,
    /// `Ok(None)` when none was presented (an empty credential counts as none; whether one is
    /// required depends on the torrent, and is the caller's to decide).
    #[inline]
    pub(crate) fn check_key(
        &self,
        passkey: Option<&[u8]>,
        now: i64,
    ) -> Result<Option<KeyEntry>, Denial> {
        let presented = match passkey {
            Some(p) if !p.is_empty() => p,
            _ => return Ok(None),
        };
        let key = KeyBytes::new(presented)
            .and_then(|k| self.keys.get(&k))
            .ok_or(Denial::UnknownKey)?;
        if key.revoked {
            return Err(Denial::RevokedKey);
        }
        if key.expires_at.is_some_and(|e| e <= now) {
            return Err(Denial::ExpiredKey);
        }
        match key.user {
            None => Err(Denial::UnknownKey),
            Some(user) if user.disabled => Err(Denial::DisabledUser),
            Some(_) => Ok(Some(*key)),
        }
    }

    /// Passkeys neither revoked nor expired at `now`.
    pub(crate) fn active_keys(&self, now: i64) -> u64 {
        self.keys.values().filter(|k| k.is_active(now)).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, user_id: i64) -> KeyEntry {
        KeyEntry {
            id,
            user_id,
            expires_at: None,
            revoked: false,
            user: None,
        }
    }

    #[test]
    fn keys_follow_their_users_standing() {
        let mut view = View::default();
        let (a, b) = ([b'a'; KEY_LEN], [b'b'; KEY_LEN]);
        view.set_user(1, UserEntry { disabled: false });
        view.insert_key(KeyBytes(a), key(10, 1));
        // A key whose user the view does not know is refused as unknown.
        view.insert_key(KeyBytes(b), key(11, 2));
        assert_eq!(view.check_key(Some(&a), 0).unwrap().unwrap().id, 10);
        assert_eq!(view.check_key(Some(&b), 0), Err(Denial::UnknownKey));
        view.set_user(1, UserEntry { disabled: true });
        assert_eq!(view.check_key(Some(&a), 0), Err(Denial::DisabledUser));
        view.set_user(1, UserEntry { disabled: false });
        assert!(view.check_key(Some(&a), 0).unwrap().is_some());
        // Keys always come after their users (at load and through the admin API); a key
        // inserted again picks up a user added since.
        view.set_user(2, UserEntry { disabled: false });
        view.insert_key(KeyBytes(b), key(11, 2));
        assert!(view.check_key(Some(&b), 0).unwrap().is_some());
        assert_eq!(view.check_key(None, 0), Ok(None));
        assert_eq!(view.check_key(Some(b""), 0), Ok(None));
    }
}
