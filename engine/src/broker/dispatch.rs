//! The dispatch stage's shape: what every handler is given ([`Call`]) and what it returns
//! ([`Dispatched`]). Each Kafka API's handler is an `impl Handle<ItsRequestBody> for Call` in its
//! own file; `wire::protocol::apis` (the one table of APIs) generates the `match` that picks it,
//! so an API in the table without a handler here does not compile.
//!
//! Owns that contract. Must not: interpret any request (the handlers do), or grow per-API cases
//! (a rule for every API — authorisation, quotas — is a column of the table, checked here once).

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::Broker;
use crate::shard::{Completion, ConnContext};
use wire::protocol::header::RequestHeader;
use wire::protocol::ProtocolError;

/// One request being dispatched: the shard's broker, the connection it came on (peer, listener,
/// principal) and the request's header. Handlers consume it.
pub(super) struct Call {
    pub broker: Rc<Broker>,
    pub conn: Rc<ConnContext>,
    pub header: RequestHeader,
}

/// The dispatch stage of one request: resolves (in request order on the connection) to its
/// completion stage; an error closes the connection.
pub(super) type Dispatched = LocalBoxFuture<'static, Result<Completion, ProtocolError>>;

/// A dispatch stage that did all its work synchronously.
pub(super) fn ready(done: Result<Completion, ProtocolError>) -> Dispatched {
    futures::future::ready(done).boxed_local()
}
