//! UDP tracker (BEP 15, BEP 41) for swarmd. Built in its own issue; this crate is a placeholder in the workspace layout and exports nothing yet.
