//! The admin operations of [`PrivatePolicy`]: users, passkeys, the allow list and client rules.
//!
//! Each is blocking: one database transaction, then the in-memory view is updated (with the
//! connection still held, so admin operations and flushes are serialized), so a change takes
//! effect on the very next request.

use std::collections::HashSet;

use swarmd_proto::InfoHash;

use crate::error::PrivateError;
use crate::model::{
    validate_user_name, ClientRule, KeyState, Passkey, Torrent, TorrentDetail, TorrentOptions,
    User, UserDetail,
};
use crate::policy::PrivatePolicy;
use crate::torrent::TorrentEntry;
use crate::view::{KeyBytes, KeyEntry, UserEntry, View};
use crate::{report, store};

/// Adds a freshly issued key to the view.
fn insert_key(view: &mut View, key: &Passkey) {
    if let Some(bytes) = KeyBytes::new(key.key.as_bytes()) {
        view.insert_key(
            bytes,
            KeyEntry {
                id: key.id,
                user_id: key.user_id,
                expires_at: key.expires_at,
                revoked: key.revoked_at.is_some(),
                user: None,
            },
        );
    }
}

/// Marks a key revoked in the view.
fn mark_revoked(view: &mut View, key: &str) {
    if let Some(bytes) = KeyBytes::new(key.as_bytes()) {
        if let Some(k) = view.keys.get_mut(&bytes) {
            k.revoked = true;
        }
    }
}

fn no_such_user(id: i64) -> PrivateError {
    PrivateError::NoSuchUser(id.to_string())
}

impl PrivatePolicy {
    /// Creates a user (name: 1 to 64 characters, no control characters, unique) with one
    /// passkey that never expires.
    pub fn create_user(&self, name: &str) -> Result<(User, Passkey), PrivateError> {
        validate_user_name(name)?;
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        if store::user_id_by_name(&tx, name)?.is_some() {
            return Err(PrivateError::NameTaken(name.to_owned()));
        }
        let user = store::insert_user(&tx, name, now)?;
        let key = store::insert_key(&tx, user.id, None, now)?;
        tx.commit()?;
        let mut view = self.view.write();
        view.set_user(user.id, UserEntry { disabled: false });
        insert_key(&mut view, &key);
        self.metrics.users.set(view.users.len() as i64);
        tracing::info!(user_id = user.id, name, "user created");
        Ok((user, key))
    }

    /// Every user, by id.
    pub fn list_users(&self) -> Result<Vec<User>, PrivateError> {
        Ok(store::users(&self.conn.lock())?)
    }

    /// A user with passkeys and transfer totals. Flushes pending accounting first, so the
    /// figures are exact.
    pub fn user(&self, id: i64) -> Result<UserDetail, PrivateError> {
        self.flush()?;
        let now = self.now();
        report::user_detail(&self.conn.lock(), id, now)?.ok_or_else(|| no_such_user(id))
    }

    /// [`PrivatePolicy::user`] by name.
    pub fn user_by_name(&self, name: &str) -> Result<UserDetail, PrivateError> {
        let id = store::user_id_by_name(&self.conn.lock(), name)?
            .ok_or_else(|| PrivateError::NoSuchUser(name.to_owned()))?;
        self.user(id)
    }

    /// Enables or disables a user. Disabling refuses their keys at once ("account disabled"),
    /// and evicts their peer sessions and their peers from the registry.
    pub fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<User, PrivateError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let user = store::set_disabled(&tx, id, disabled)?.ok_or_else(|| no_such_user(id))?;
        if disabled {
            store::delete_sessions_of_user(&tx, id)?;
        }
        tx.commit()?;
        let mut view = self.view.write();
        view.set_user(id, UserEntry { disabled });
        if disabled {
            let evicted = self.evict(|s| s.user_id == id);
            tracing::info!(user_id = id, evicted, "user disabled");
        } else {
            tracing::info!(user_id = id, "user enabled");
        }
        Ok(user)
    }

    /// Issues another passkey to a user, expiring at `expires_at` (server time) if given.
    pub fn issue_key(
        &self,
        user_id: i64,
        expires_at: Option<i64>,
    ) -> Result<Passkey, PrivateError> {
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        store::user(&tx, user_id)?.ok_or_else(|| no_such_user(user_id))?;
        let key = store::insert_key(&tx, user_id, expires_at, now)?;
        tx.commit()?;
        insert_key(&mut self.view.write(), &key);
        tracing::info!(user_id, key_id = key.id, "passkey issued");
        Ok(key)
    }

    /// Revokes a passkey (idempotent: revoking a revoked key changes nothing), evicting the
    /// sessions announced with it and their peers from the registry.
    pub fn revoke_key(&self, key: &str) -> Result<Passkey, PrivateError> {
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let found = store::key_by_value(&tx, key, now)?.ok_or(PrivateError::NoSuchKey)?;
        store::revoke_key(&tx, found.id, now)?;
        store::delete_sessions_of_key(&tx, found.id)?;
        let revoked = store::key_by_value(&tx, key, now)?.ok_or(PrivateError::NoSuchKey)?;
        tx.commit()?;
        let mut view = self.view.write();
        mark_revoked(&mut view, key);
        let evicted = self.evict(|s| s.key_id == found.id);
        tracing::info!(
            user_id = found.user_id,
            key_id = found.id,
            evicted,
            "passkey revoked"
        );
        Ok(revoked)
    }

    /// Revokes every active key of a user (evicting their sessions as [`Self::revoke_key`]
    /// does) and issues one new key.
    pub fn rotate_keys(
        &self,
        user_id: i64,
        expires_at: Option<i64>,
    ) -> Result<Passkey, PrivateError> {
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        store::user(&tx, user_id)?.ok_or_else(|| no_such_user(user_id))?;
        let active: Vec<Passkey> = store::keys_of_user(&tx, user_id, now)?
            .into_iter()
            .filter(|k| k.state == KeyState::Active)
            .collect();
        for k in &active {
            store::revoke_key(&tx, k.id, now)?;
            store::delete_sessions_of_key(&tx, k.id)?;
        }
        let key = store::insert_key(&tx, user_id, expires_at, now)?;
        tx.commit()?;
        let mut view = self.view.write();
        for k in &active {
            mark_revoked(&mut view, &k.key);
        }
        insert_key(&mut view, &key);
        let ids: HashSet<i64> = active.iter().map(|k| k.id).collect();
        let evicted = self.evict(|s| ids.contains(&s.key_id));
        tracing::info!(user_id, revoked = ids.len(), evicted, "passkeys rotated");
        Ok(key)
    }

    /// Allow-lists a torrent or updates its options (re-adding a removed one revives it with
    /// its history). A torrent that is now private is purged from the registry, so peers that
    /// came in through the DHT are forgotten.
    pub fn allow_torrent(
        &self,
        info_hash: InfoHash,
        opts: &TorrentOptions,
    ) -> Result<Torrent, PrivateError> {
        let mut out = self.allow_torrents(&[(info_hash, opts.clone())])?;
        out.pop()
            .ok_or_else(|| PrivateError::Db(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Allows (or updates) many torrents in one transaction: all or none. For imports of a whole
    /// catalogue, where one transaction per torrent would be slow.
    pub fn allow_torrents(
        &self,
        items: &[(InfoHash, TorrentOptions)],
    ) -> Result<Vec<Torrent>, PrivateError> {
        for (_, opts) in items {
            opts.validate()?;
        }
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let mut rows = Vec::with_capacity(items.len());
        for (info_hash, opts) in items {
            rows.push(store::upsert_torrent(&tx, info_hash, opts, now)?);
        }
        tx.commit()?;
        // The view lock makes the whole batch appear at once to announces, which read-lock it
        // before a torrent shard.
        let view = self.view.write();
        let mut purge = Vec::new();
        for ((info_hash, opts), (id, _)) in items.iter().zip(&rows) {
            let entry = TorrentEntry {
                id: *id,
                private: opts.private,
                upload_multiplier: opts.upload_multiplier,
                download_multiplier: opts.download_multiplier,
            };
            self.torrents.allow(info_hash, &entry);
            if entry.private_in(self.mode) {
                purge.push(*info_hash);
            }
        }
        self.metrics.torrents.set(self.torrents.listed() as i64);
        drop(view);
        drop(conn);
        for info_hash in &purge {
            self.registry.remove(info_hash);
        }
        if items.len() == 1 {
            tracing::info!(info_hash = %items[0].0, private = items[0].1.private, "torrent allowed");
        } else {
            tracing::info!(count = items.len(), "torrents allowed");
        }
        Ok(rows.into_iter().map(|(_, t)| t).collect())
    }

    /// Removes a torrent from the allow list (false if it was not listed) and its swarm from
    /// the registry. A soft delete: its transfer history is kept.
    pub fn remove_torrent(&self, info_hash: &InfoHash) -> Result<bool, PrivateError> {
        let now = self.now();
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        if !store::remove_torrent(&tx, info_hash, now)? {
            return Ok(false);
        }
        tx.commit()?;
        let view = self.view.write();
        self.torrents.unlist(info_hash);
        self.metrics.torrents.set(self.torrents.listed() as i64);
        drop(view);
        drop(conn);
        self.registry.remove(info_hash);
        tracing::info!(%info_hash, "torrent removed");
        Ok(true)
    }

    /// Every listed torrent, by id.
    pub fn list_torrents(&self) -> Result<Vec<Torrent>, PrivateError> {
        Ok(store::listed_torrents(&self.conn.lock())?)
    }

    /// A listed torrent with per-user transfers. Flushes pending accounting first.
    pub fn torrent(&self, info_hash: &InfoHash) -> Result<TorrentDetail, PrivateError> {
        self.flush()?;
        report::torrent_detail(&self.conn.lock(), info_hash)?.ok_or(PrivateError::NoSuchTorrent)
    }

    /// Adds or replaces the client rule for `rule.prefix`.
    pub fn set_client_rule(&self, rule: &ClientRule) -> Result<ClientRule, PrivateError> {
        rule.validate()?;
        let now = self.now();
        let conn = self.conn.lock();
        store::upsert_rule(&conn, rule, now)?;
        self.view
            .write()
            .set_rule(rule.prefix.as_bytes(), rule.action);
        tracing::info!(prefix = %rule.prefix, action = rule.action.as_str(), "client rule set");
        Ok(rule.clone())
    }

    /// Removes the client rule for `prefix`; false if there was none.
    pub fn remove_client_rule(&self, prefix: &str) -> Result<bool, PrivateError> {
        let conn = self.conn.lock();
        let removed = store::delete_rule(&conn, prefix)?;
        self.view.write().remove_rule(prefix.as_bytes());
        if removed {
            tracing::info!(prefix, "client rule removed");
        }
        Ok(removed)
    }

    /// Every client rule, by prefix.
    pub fn list_client_rules(&self) -> Result<Vec<ClientRule>, PrivateError> {
        Ok(store::client_rules(&self.conn.lock())?)
    }
}
