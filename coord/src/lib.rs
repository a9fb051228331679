//! coord — the quorum coordinator (Raft-replicated znode tree). Under construction in its own issue.
