//! Linearizability checker for a versioned compare-and-set register (Wing & Gong search with
//! memoisation, as in Knossos / Porcupine).
//!
//! Owns: the register model and the search. Must not: know how the history was produced (the
//! simulator and any future process-level test feed it the same way).

use std::collections::HashSet;

/// An operation on the register. Versions are znode versions: every applied write adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegOp {
    Read,
    Write(u64),
    Cas { expected_version: i32, value: u64 },
}

/// What the client observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegResult {
    Read { value: u64, version: i32 },
    Written { version: i32 },
    CasOk { version: i32 },
    CasFailed,
}

/// One operation of a history. `ret_ms == None` means the outcome is unknown: it may have taken
/// effect at any time after `call_ms`, or never.
#[derive(Debug, Clone, Copy)]
pub struct HistOp {
    pub client: u64,
    pub call_ms: u64,
    pub ret_ms: Option<u64>,
    pub op: RegOp,
    pub result: Option<RegResult>,
}

type State = (u64, i32);

fn step(s: State, op: RegOp) -> (State, RegResult) {
    match op {
        RegOp::Read => (
            s,
            RegResult::Read {
                value: s.0,
                version: s.1,
            },
        ),
        RegOp::Write(v) => ((v, s.1 + 1), RegResult::Written { version: s.1 + 1 }),
        RegOp::Cas {
            expected_version,
            value,
        } => {
            if expected_version == s.1 {
                ((value, s.1 + 1), RegResult::CasOk { version: s.1 + 1 })
            } else {
                (s, RegResult::CasFailed)
            }
        }
    }
}

/// Checks that `history` is linearizable starting from register state `initial`.
/// Returns a description of the failure otherwise.
pub fn check(initial: (u64, i32), history: &[HistOp]) -> Result<(), String> {
    // Unknown reads constrain nothing.
    let ops: Vec<HistOp> = history
        .iter()
        .filter(|o| o.ret_ms.is_some() || o.op != RegOp::Read)
        .copied()
        .collect();
    let n = ops.len();
    let words = n.div_ceil(64);
    let completed: Vec<usize> = (0..n).filter(|i| ops[*i].ret_ms.is_some()).collect();
    let mut memo: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut done = vec![0u64; words];
    let mut budget: u64 = 50_000_000;
    if search(&ops, &completed, &mut done, initial, &mut memo, &mut budget) {
        Ok(())
    } else if budget == 0 {
        Err("linearizability search exhausted its budget".into())
    } else {
        Err(format!(
            "history of {n} ops is not linearizable (initial {initial:?}); ops: {ops:#?}"
        ))
    }
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn search(
    ops: &[HistOp],
    completed: &[usize],
    done: &mut Vec<u64>,
    state: State,
    memo: &mut HashSet<(Vec<u64>, State)>,
    budget: &mut u64,
) -> bool {
    let limit = completed
        .iter()
        .filter(|i| !is_done(done, **i))
        .filter_map(|i| ops[*i].ret_ms)
        .min();
    let Some(limit) = limit else {
        return true;
    };
    if *budget == 0 || !memo.insert((done.clone(), state)) {
        return false;
    }
    *budget -= 1;
    for i in 0..ops.len() {
        if is_done(done, i) || ops[i].call_ms > limit {
            continue;
        }
        let (next, res) = step(state, ops[i].op);
        if let Some(observed) = ops[i].result {
            if observed != res {
                continue;
            }
        }
        done[i / 64] |= 1 << (i % 64);
        let ok = search(ops, completed, done, next, memo, budget);
        done[i / 64] &= !(1 << (i % 64));
        if ok {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: Option<u64>, op: RegOp, result: Option<RegResult>) -> HistOp {
        HistOp {
            client: 0,
            call_ms: call,
            ret_ms: ret,
            op,
            result,
        }
    }

    #[test]
    fn accepts_concurrent_and_rejects_stale_read() {
        // Write overlaps a read that sees the new value: fine.
        let h = vec![
            op(
                0,
                Some(10),
                RegOp::Write(5),
                Some(RegResult::Written { version: 1 }),
            ),
            op(
                1,
                Some(5),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 5,
                    version: 1,
                }),
            ),
        ];
        assert!(check((0, 0), &h).is_ok());
        // A read strictly after an acknowledged write sees the old value: lost write.
        let h = vec![
            op(
                0,
                Some(10),
                RegOp::Write(5),
                Some(RegResult::Written { version: 1 }),
            ),
            op(
                11,
                Some(12),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 0,
                    version: 0,
                }),
            ),
        ];
        assert!(check((0, 0), &h).is_err());
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_apply() {
        let h = vec![
            op(0, None, RegOp::Write(7), None),
            op(
                5,
                Some(6),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 0,
                    version: 0,
                }),
            ),
            op(
                7,
                Some(8),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 7,
                    version: 1,
                }),
            ),
        ];
        assert!(check((0, 0), &h).is_ok());
        // But it cannot un-apply.
        let h = vec![
            op(0, None, RegOp::Write(7), None),
            op(
                5,
                Some(6),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 7,
                    version: 1,
                }),
            ),
            op(
                7,
                Some(8),
                RegOp::Read,
                Some(RegResult::Read {
                    value: 0,
                    version: 0,
                }),
            ),
        ];
        assert!(check((0, 0), &h).is_err());
    }

    #[test]
    fn two_cas_on_the_same_version_cannot_both_succeed() {
        let cas = |v| RegOp::Cas {
            expected_version: 0,
            value: v,
        };
        let h = vec![
            op(0, Some(10), cas(1), Some(RegResult::CasOk { version: 1 })),
            op(0, Some(10), cas(2), Some(RegResult::CasOk { version: 1 })),
        ];
        assert!(check((0, 0), &h).is_err());
        let h = vec![
            op(0, Some(10), cas(1), Some(RegResult::CasOk { version: 1 })),
            op(0, Some(10), cas(2), Some(RegResult::CasFailed)),
        ];
        assert!(check((0, 0), &h).is_ok());
    }
}
