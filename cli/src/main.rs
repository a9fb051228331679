//! weir — the one binary. Only this crate reads argv and the environment.
fn main() {}
