//! The crate's error type: database failures, unknown records, conflicts and bad input.

/// Why a private-mode operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateError {
    /// The database failed (IO, corruption, a constraint).
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database file could not be opened or configured.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The path as configured.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer swarmd: its schema version is above the newest this
    /// code knows, so it is left untouched.
    #[error(
        "database schema version {found} is newer than this swarmd supports ({supported}); \
         upgrade swarmd"
    )]
    SchemaTooNew {
        /// The version found in the database (`PRAGMA user_version`).
        found: i64,
        /// The newest version this code can migrate to.
        supported: i64,
    },
    /// No user with this id or name.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// No passkey with this value.
    #[error("no such passkey")]
    NoSuchKey,
    /// The info hash is not on the allow list.
    #[error("no such torrent")]
    NoSuchTorrent,
    /// A user with this name exists already.
    #[error("user name already taken: {0}")]
    NameTaken(String),
    /// Bad input; the message says what.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl PrivateError {
    /// True for the "no such user / key / torrent" errors (an HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            PrivateError::NoSuchUser(_) | PrivateError::NoSuchKey | PrivateError::NoSuchTorrent
        )
    }

    /// True when the request conflicts with existing state: a taken name (an HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, PrivateError::NameTaken(_))
    }

    /// True for bad input (an HTTP 400).
    pub fn is_invalid(&self) -> bool {
        matches!(self, PrivateError::Invalid(_))
    }
}
