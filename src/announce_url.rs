//! Personal announce URLs: a public base URL (`http://HOST:PORT/announce`) with a user's passkey
//! written in as a path segment (`http://HOST:PORT/PASSKEY/announce`), the form both trackers
//! route (over UDP the path travels as BEP 41 URL data).

/// Checks that `url` can serve as a base: `http://`, `https://` or `udp://`, a host, a path
/// ending in `/announce`, and no query or fragment.
pub fn check_base(url: &str) -> Result<(), &'static str> {
    let rest = ["http://", "https://", "udp://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or("must start with http://, https:// or udp://")?;
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain a query, a fragment or whitespace");
    }
    let (host, path) = rest.split_at(rest.find('/').ok_or("has no path")?);
    if host.is_empty() {
        return Err("has no host");
    }
    if !path.ends_with("/announce") {
        return Err("its path must end with /announce");
    }
    Ok(())
}

/// The personal URL for `passkey` under a base accepted by [`check_base`].
pub fn personal(base: &str, passkey: &str) -> String {
    let stem = base.strip_suffix("/announce").unwrap_or(base);
    format!("{stem}/{passkey}/announce")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_checked() {
        assert!(check_base("http://t.example:6969/announce").is_ok());
        assert!(check_base("https://t.example/tracker/announce").is_ok());
        assert!(check_base("udp://t.example:6969/announce").is_ok());
        assert!(check_base("ftp://t.example/announce").is_err());
        assert!(check_base("http://t.example:6969/scrape").is_err());
        assert!(check_base("http://t.example:6969").is_err());
        assert!(check_base("http:///announce").is_err());
        assert!(check_base("http://t.example/announce?x=1").is_err());
    }

    #[test]
    fn passkey_goes_before_announce() {
        assert_eq!(
            personal("http://t.example:6969/announce", "abc"),
            "http://t.example:6969/abc/announce"
        );
        assert_eq!(
            personal("udp://t.example:6969/announce", "abc"),
            "udp://t.example:6969/abc/announce"
        );
        assert_eq!(
            personal("https://t.example/x/announce", "k"),
            "https://t.example/x/k/announce"
        );
    }
}
