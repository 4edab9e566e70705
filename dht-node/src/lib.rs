//! Mainline DHT node (BEP 5 and friends) for swarmd. Built in its own issue; this crate is a placeholder in the workspace layout and exports nothing yet.
