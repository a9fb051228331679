//! DescribeCluster: this broker (node id, advertised host and port, rack) as the whole cluster and
//! its controller.
//!
//! Owns that answer. Must not: consult or change any state but the broker's config.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::shard::Completion;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

fn dispatch_describe_cluster(
    b: Rc<Broker>,
    h: RequestHeader,
    _body: DescribeClusterRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let node = BrokerId(b.cfg.node_id);
        let response = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(b.cluster_id.clone()))
            .with_controller_id(node)
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(StrBytes::from_string(b.cfg.advertised_host.clone()))
                .with_port(i32::from(b.cfg.advertised_port))
                .with_rack(b.cfg.rack.clone().map(StrBytes::from_string))]);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<DescribeClusterRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DescribeClusterRequest) -> Dispatched {
        ready(dispatch_describe_cluster(self.broker, self.header, body))
    }
}
