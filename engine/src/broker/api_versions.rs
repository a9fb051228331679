//! ApiVersions: answered from the API table (`wire::protocol::api_versions::respond`), at any
//! version.
//!
//! Owns nothing but the hand-over. Must not: keep a list of APIs of its own.

use super::dispatch::{ready, Call, Dispatched};
use futures::FutureExt;
use wire::protocol::api_versions::{self, ApiVersionsBody};
use wire::protocol::apis::Handle;

impl Handle<ApiVersionsBody> for Call {
    type Output = Dispatched;
    fn handle(self, _body: ApiVersionsBody) -> Dispatched {
        ready(
            api_versions::respond(&self.header)
                .map(|frame| async move { Ok(Some(frame)) }.boxed_local()),
        )
    }
}
