//! The admin API's bearer token: from `admin.token` (or `SWARMD__ADMIN__TOKEN`) or from
//! `admin.token_file`, which is re-read on reload so an operator rotates it without a restart.
//! Presented tokens are compared in constant time.

use std::io;
use std::path::PathBuf;
use std::sync::RwLock;

use sha1::{Digest, Sha1};

use crate::config::{AdminConfig, MIN_TOKEN_LEN};

/// What a request's `Authorization` header amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// No token is configured: the API is disabled.
    Disabled,
    /// No bearer token was presented.
    Missing,
    /// A token was presented and it is not the configured one.
    Wrong,
    /// The token matches.
    Ok,
}

/// The configured token, if any, and where to re-read it from.
#[derive(Debug)]
pub struct AdminToken {
    /// SHA-1 of the token, so comparisons cost the same whatever the presented length.
    digest: RwLock<Option<[u8; 20]>>,
    file: Option<PathBuf>,
}

fn digest(token: &str) -> [u8; 20] {
    Sha1::digest(token.as_bytes()).into()
}

fn read_file(path: &PathBuf) -> io::Result<Option<[u8; 20]>> {
    let text = std::fs::read_to_string(path)?;
    let token = text.trim();
    if token.is_empty() {
        return Ok(None);
    }
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the token in {} is shorter than {MIN_TOKEN_LEN} characters",
                path.display()
            ),
        ));
    }
    Ok(Some(digest(token)))
}

impl AdminToken {
    /// The token of `config`, reading `token_file` if set.
    pub fn from_config(config: &AdminConfig) -> io::Result<Self> {
        let file = (!config.token_file.is_empty()).then(|| PathBuf::from(&config.token_file));
        let token = config.token.trim();
        let current = match &file {
            Some(path) => read_file(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("admin.token_file {}: {e}", path.display()),
                )
            })?,
            None => (!token.is_empty()).then(|| digest(token)),
        };
        Ok(Self {
            digest: RwLock::new(current),
            file,
        })
    }

    /// A fixed token (tests).
    pub fn fixed(token: Option<&str>) -> Self {
        Self {
            digest: RwLock::new(token.map(digest)),
            file: None,
        }
    }

    /// True if a token is configured (the API is enabled).
    pub fn is_set(&self) -> bool {
        self.digest.read().map(|d| d.is_some()).unwrap_or(false)
    }

    /// Re-reads the token file, if the token comes from one. On error the old token stays.
    pub fn reload(&self) -> io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let fresh = read_file(path)?;
        if let Ok(mut d) = self.digest.write() {
            *d = fresh;
        }
        Ok(())
    }

    /// Checks an `Authorization` header value (`Bearer TOKEN`).
    pub fn check(&self, authorization: Option<&[u8]>) -> TokenCheck {
        let Some(expected) = self.digest.read().ok().and_then(|d| *d) else {
            return TokenCheck::Disabled;
        };
        let Some(presented) = authorization.and_then(bearer) else {
            return TokenCheck::Missing;
        };
        let got: [u8; 20] = Sha1::digest(presented).into();
        let diff = got
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            TokenCheck::Ok
        } else {
            TokenCheck::Wrong
        }
    }
}

/// The credentials of a `Bearer` authorization (scheme case-insensitive, RFC 6750).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bearer_tokens() {
        let t = AdminToken::fixed(Some("0123456789abcdef"));
        assert_eq!(t.check(None), TokenCheck::Missing);
        assert_eq!(t.check(Some(b"Basic x")), TokenCheck::Missing);
        assert_eq!(t.check(Some(b"Bearer")), TokenCheck::Missing);
        assert_eq!(t.check(Some(b"Bearer nope")), TokenCheck::Wrong);
        assert_eq!(t.check(Some(b"bearer  0123456789abcdef ")), TokenCheck::Ok);
        let off = AdminToken::fixed(None);
        assert_eq!(
            off.check(Some(b"Bearer 0123456789abcdef")),
            TokenCheck::Disabled
        );
    }

    #[test]
    fn token_file_is_reread() {
        let dir = std::env::temp_dir().join(format!("swarmd-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "first-token-0123456789\n").unwrap();
        let config = AdminConfig {
            token_file: path.display().to_string(),
            ..AdminConfig::default()
        };
        let t = AdminToken::from_config(&config).unwrap();
        assert_eq!(
            t.check(Some(b"Bearer first-token-0123456789")),
            TokenCheck::Ok
        );
        std::fs::write(&path, "second-token-0123456789").unwrap();
        t.reload().unwrap();
        assert_eq!(
            t.check(Some(b"Bearer first-token-0123456789")),
            TokenCheck::Wrong
        );
        assert_eq!(
            t.check(Some(b"Bearer second-token-0123456789")),
            TokenCheck::Ok
        );
        std::fs::write(&path, "short").unwrap();
        assert!(t.reload().is_err());
        assert_eq!(
            t.check(Some(b"Bearer second-token-0123456789")),
            TokenCheck::Ok
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
