//! InitProducerId: hands out a producer id from this shard's reserved block (epoch 0);
//! transactional ids are answered COORDINATOR_NOT_AVAILABLE (no transactions yet).
//!
//! Owns the InitProducerId answer. Must not: hand out an id outside a block reserved in the
//! coordinator.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

fn dispatch_init(
    b: Rc<Broker>,
    h: RequestHeader,
    body: InitProducerIdRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let response = if body.transactional_id.is_some() {
            // Transactions need a transaction coordinator (a later issue).
            InitProducerIdResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
        } else {
            // Kafka's rule without a transactional id: always a new producer id at epoch 0, also
            // when the producer asks to bump the epoch of the id it has (KIP-360's epoch bump
            // after UNKNOWN_PRODUCER_ID or a sequence error): its sequences restart at 0 on every
            // partition, and the old id's state expires.
            match b.next_producer_id().await {
                Ok(id) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(0),
                Err(e) => {
                    tracing::warn!("InitProducerId: {e}");
                    InitProducerIdResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
                }
            }
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<InitProducerIdRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: InitProducerIdRequest) -> Dispatched {
        ready(dispatch_init(self.broker, self.header, body))
    }
}
