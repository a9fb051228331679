//! The Kafka error codes weir answers with or reacts to: one name per code, each taken from
//! `kafka_protocol`'s table (generated from Kafka's `Errors.java`), so no number is written twice.
//!
//! Owns: the names. Must not: decide which error a situation gets (the broker and the clients do).
//! The tidy test (`cli/tests/tidy.rs`) refuses a Kafka error code defined anywhere else.

pub use kafka_protocol::error::ResponseError;

/// No error (Kafka's `NONE`); `ResponseError` has no variant for it.
pub const NONE: i16 = 0;

macro_rules! codes {
    ($($name:ident = $variant:ident),* $(,)?) => {
        $(
            #[doc = concat!("Kafka's `", stringify!($name), "`.")]
            pub const $name: i16 = ResponseError::$variant.code();
        )*
    };
}

codes! {
    UNKNOWN_SERVER_ERROR = UnknownServerError,
    OFFSET_OUT_OF_RANGE = OffsetOutOfRange,
    CORRUPT_MESSAGE = CorruptMessage,
    UNKNOWN_TOPIC_OR_PARTITION = UnknownTopicOrPartition,
    LEADER_NOT_AVAILABLE = LeaderNotAvailable,
    NOT_LEADER_OR_FOLLOWER = NotLeaderOrFollower,
    REQUEST_TIMED_OUT = RequestTimedOut,
    MESSAGE_TOO_LARGE = MessageTooLarge,
    OFFSET_METADATA_TOO_LARGE = OffsetMetadataTooLarge,
    NETWORK_EXCEPTION = NetworkException,
    COORDINATOR_NOT_AVAILABLE = CoordinatorNotAvailable,
    NOT_COORDINATOR = NotCoordinator,
    INVALID_TOPIC_EXCEPTION = InvalidTopicException,
    NOT_ENOUGH_REPLICAS = NotEnoughReplicas,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = NotEnoughReplicasAfterAppend,
    INVALID_REQUIRED_ACKS = InvalidRequiredAcks,
    ILLEGAL_GENERATION = IllegalGeneration,
    INCONSISTENT_GROUP_PROTOCOL = InconsistentGroupProtocol,
    INVALID_GROUP_ID = InvalidGroupId,
    UNKNOWN_MEMBER_ID = UnknownMemberId,
    INVALID_SESSION_TIMEOUT = InvalidSessionTimeout,
    REBALANCE_IN_PROGRESS = RebalanceInProgress,
    TOPIC_AUTHORIZATION_FAILED = TopicAuthorizationFailed,
    UNSUPPORTED_VERSION = UnsupportedVersion,
    TOPIC_ALREADY_EXISTS = TopicAlreadyExists,
    INVALID_PARTITIONS = InvalidPartitions,
    INVALID_REPLICATION_FACTOR = InvalidReplicationFactor,
    INVALID_CONFIG = InvalidConfig,
    INVALID_REQUEST = InvalidRequest,
    UNSUPPORTED_FOR_MESSAGE_FORMAT = UnsupportedForMessageFormat,
    OUT_OF_ORDER_SEQUENCE_NUMBER = OutOfOrderSequenceNumber,
    DUPLICATE_SEQUENCE_NUMBER = DuplicateSequenceNumber,
    INVALID_PRODUCER_EPOCH = InvalidProducerEpoch,
    KAFKA_STORAGE_ERROR = KafkaStorageError,
    NON_EMPTY_GROUP = NonEmptyGroup,
    GROUP_ID_NOT_FOUND = GroupIdNotFound,
    FETCH_SESSION_ID_NOT_FOUND = FetchSessionIdNotFound,
    UNKNOWN_LEADER_EPOCH = UnknownLeaderEpoch,
    MEMBER_ID_REQUIRED = MemberIdRequired,
    FENCED_INSTANCE_ID = FencedInstanceId,
    GROUP_SUBSCRIBED_TO_TOPIC = GroupSubscribedToTopic,
    INVALID_RECORD = InvalidRecord,
    UNKNOWN_TOPIC_ID = UnknownTopicId,
}

/// The name Kafka gives `code` (`NONE` for 0), for messages and logs.
pub fn name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(error) => format!("{error:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas_numbers() {
        // Spot checks against Kafka's protocol guide: a wrong variant in the table above fails here.
        assert_eq!(UNKNOWN_SERVER_ERROR, -1);
        assert_eq!(CORRUPT_MESSAGE, 2);
        assert_eq!(UNKNOWN_TOPIC_OR_PARTITION, 3);
        assert_eq!(NOT_ENOUGH_REPLICAS, 19);
        assert_eq!(ILLEGAL_GENERATION, 22);
        assert_eq!(UNSUPPORTED_VERSION, 35);
        assert_eq!(KAFKA_STORAGE_ERROR, 56);
        assert_eq!(INVALID_RECORD, 87);
        assert_eq!(UNKNOWN_TOPIC_ID, 100);
        assert_eq!(name(3), "UnknownTopicOrPartition");
        assert_eq!(name(0), "NONE");
    }
}
