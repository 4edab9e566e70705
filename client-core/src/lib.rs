//! BitTorrent client library used by swarmd's end-to-end tests. Built in its own issues; this crate is a placeholder in the workspace layout and exports nothing yet.
