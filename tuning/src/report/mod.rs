//! report
pub struct Written { pub files: Vec<std::path::PathBuf>, pub summary_markdown: String }
pub fn write(_r: &crate::results::Results, _d: &std::path::Path, _c: &crate::recommend::Criteria) -> Result<Written, crate::TuneError> { Err(crate::TuneError::Report("x".into())) }
