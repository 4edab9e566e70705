//! A minimal tracker URL parser: `scheme://host[:port][/path][?query]`, with IPv6 hosts in
//! brackets. Enough for announce URLs; no userinfo, no fragments kept.

use std::net::SocketAddr;

use super::TrackerError;

/// Why a tracker URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://`.
    #[error("not a URL (no `scheme://`): `{0}`")]
    NoScheme(String),
    /// An empty host, an unclosed `[`, or junk after the host.
    #[error("bad host in `{0}`")]
    BadHost(String),
    /// A port that is not a number from 1 to 65535, or a missing port where there is no default.
    #[error("bad or missing port in `{0}`")]
    BadPort(String),
}

/// A parsed tracker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerUrl {
    /// The scheme, lowercase (`http`, `udp`, ...).
    pub scheme: String,
    /// The host name or address (without IPv6 brackets).
    pub host: String,
    /// The port (scheme default when absent: 80 for http, 443 for https).
    pub port: u16,
    /// The path, starting with `/` (`/` when absent).
    pub path: String,
    /// The query without its `?`, possibly empty.
    pub query: String,
}

impl TrackerUrl {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::NoScheme(url.to_owned()))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            return Err(UrlError::NoScheme(url.to_owned()));
        }
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.split('#').next().unwrap_or_default();
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let bad_host = || UrlError::BadHost(url.to_owned());
        let bad_port = || UrlError::BadPort(url.to_owned());
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad_host)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(bad_host)?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(['@', ' ', '[', ']']) {
            return Err(bad_host());
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(bad_port)?,
            None => match scheme.as_str() {
                "http" => 80,
                "https" => 443,
                _ => return Err(bad_port()),
            },
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
            query: query.to_owned(),
        })
    }

    /// The path with `passkey` inserted before the last `announce` segment (`/KEY/announce`);
    /// the path unchanged when there is no key or no such segment.
    pub fn announce_path(&self, passkey: Option<&str>) -> String {
        match (passkey, self.path.rfind("/announce")) {
            (Some(key), Some(i)) => format!("{}/{key}{}", &self.path[..i], &self.path[i..]),
            _ => self.path.clone(),
        }
    }

    /// The scrape path by convention: the last path segment, if it starts with `announce`, with
    /// that word replaced by `scrape`; `None` when the URL cannot scrape.
    pub fn scrape_path(&self) -> Option<String> {
        let i = self.path.rfind('/')?;
        let last = &self.path[i + 1..];
        let rest = last.strip_prefix("announce")?;
        Some(format!("{}/scrape{rest}", &self.path[..i]))
    }

    /// The `Host` header value (with brackets for IPv6 and the port when not the default).
    pub(crate) fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves the host; the first address returned.
    pub(crate) async fn resolve(&self) -> Result<SocketAddr, TrackerError> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|_| TrackerError::Resolve(self.host.clone()))?
            .next()
            .ok_or_else(|| TrackerError::Resolve(self.host.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let u = TrackerUrl::parse("udp://[::1]:6969/announce?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 6969, "/announce")
        );
        assert_eq!(u.query, "x=1");
        let u = TrackerUrl::parse("HTTP://tracker.example").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.port, u.path.as_str()),
            ("http", 80, "/")
        );
        assert!(TrackerUrl::parse("udp://host/announce").is_err());
        assert!(TrackerUrl::parse("http://:80/").is_err());
        assert!(TrackerUrl::parse("http://h:0/").is_err());
        assert!(TrackerUrl::parse("http://[::1/").is_err());
        assert!(TrackerUrl::parse("nonsense").is_err());
    }

    #[test]
    fn scrape_and_passkey_paths() {
        let u = TrackerUrl::parse("http://h/x/announce.php").unwrap();
        assert_eq!(u.scrape_path().as_deref(), Some("/x/scrape.php"));
        assert_eq!(TrackerUrl::parse("http://h/a").unwrap().scrape_path(), None);
        let u = TrackerUrl::parse("http://h/announce").unwrap();
        assert_eq!(u.announce_path(Some("KEY")), "/KEY/announce");
        assert_eq!(u.announce_path(None), "/announce");
    }
}
