//! Tuner of the ballast file: `DATA_DIR/weir.ballast`, allocated space an operator deletes to
//! get room back at once when the data disk fills (then fixes retention and re-runs the tuner).
//!
//! Owns: that plan. Must not: write (run.rs does), or put the file anywhere but the data dir.

use super::{Action, Plan, TuneContext, Tuner};
use crate::root::HostRoot;

/// The ballast's name inside the data directory.
pub const BALLAST_FILE: &str = "weir.ballast";

pub struct Ballast;

impl Tuner for Ballast {
    fn name(&self) -> &'static str {
        "ballast"
    }
    fn about(&self) -> &'static str {
        "allocate DATA_DIR/weir.ballast (1 GiB; --ballast-bytes): space to free when the disk fills"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let dir = ctx.data_dir.display().to_string();
        if !root.path(&dir).is_dir() {
            return Plan::NotApplicable(format!("data directory {dir} does not exist"));
        }
        let path = format!("{}/{BALLAST_FILE}", dir.trim_end_matches('/'));
        if root.exists(&path) {
            return Plan::Changes(Vec::new());
        }
        Plan::Changes(vec![Action::Allocate {
            path,
            bytes: ctx.ballast_bytes,
        }])
    }
}
