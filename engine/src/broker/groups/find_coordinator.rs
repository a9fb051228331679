//! FindCoordinator: every group's coordinator is this broker (node id, advertised host and port).
//!
//! Owns that answer. Must not: create or route to any group state.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

fn dispatch_find_coordinator(
    b: Rc<Broker>,
    h: RequestHeader,
    body: FindCoordinatorRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        // key_type 1 (transactions) is not coordinated here.
        let keys: Vec<String> = if h.api_version >= 4 {
            body.coordinator_keys
                .iter()
                .map(|k| k.to_string())
                .collect()
        } else {
            vec![body.key.to_string()]
        };
        let available = body.key_type == 0 && b.offsets_topic().await.is_some();
        let code = if body.key_type != 0 {
            ec::INVALID_REQUEST
        } else if available {
            ec::NONE
        } else {
            ec::COORDINATOR_NOT_AVAILABLE
        };
        let (node, host, port) = if code == ec::NONE {
            (
                b.cfg.node_id,
                b.cfg.advertised_host.clone(),
                i32::from(b.cfg.advertised_port),
            )
        } else {
            (-1, String::new(), -1)
        };
        let response = if h.api_version >= 4 {
            FindCoordinatorResponse::default().with_coordinators(
                keys.into_iter()
                    .map(|k| {
                        Coordinator::default()
                            .with_key(s(k))
                            .with_node_id(BrokerId(node))
                            .with_host(s(host.clone()))
                            .with_port(port)
                            .with_error_code(code)
                    })
                    .collect(),
            )
        } else {
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id(BrokerId(node))
                .with_host(s(host))
                .with_port(port)
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<FindCoordinatorRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: FindCoordinatorRequest) -> Dispatched {
        ready(dispatch_find_coordinator(self.broker, self.header, body))
    }
}
