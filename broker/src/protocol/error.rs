//! The one place where storage, topic and group errors become Kafka error codes.

use kafka_protocol::ResponseError;

use super::configs::ConfigError;
use crate::group::GroupError;
use crate::log::{BatchError, LogError, ProducerError};
use crate::topics::TopicError;

pub(crate) const NONE: i16 = 0;

pub(crate) fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::InvalidBatch(BatchError::TooLarge { .. }) => {
            ResponseError::MessageTooLarge.code()
        }
        LogError::InvalidBatch(BatchError::CrcMismatch { .. })
        | LogError::InvalidBatch(BatchError::Truncated { .. })
        | LogError::InvalidBatch(BatchError::BadLength(_)) => ResponseError::CorruptMessage.code(),
        LogError::InvalidBatch(_) => ResponseError::InvalidRecord.code(),
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Io { .. } | LogError::Failed { .. } | LogError::Closed => {
            ResponseError::KafkaStorageError.code()
        }
        LogError::Config(_) => ResponseError::InvalidConfig.code(),
        LogError::Producer(ProducerError::InvalidEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch.code()
        }
        LogError::Producer(ProducerError::OutOfOrderSequence { .. }) => {
            ResponseError::OutOfOrderSequenceNumber.code()
        }
    }
}

pub(crate) fn topic_error_code(e: &TopicError) -> i16 {
    match e {
        TopicError::InvalidName(_) => ResponseError::InvalidTopicException.code(),
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists.code(),
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition.code(),
        TopicError::InvalidPartitions(_) | TopicError::PartitionsNotIncreased { .. } => {
            ResponseError::InvalidPartitions.code()
        }
        TopicError::Config(_) => ResponseError::InvalidConfig.code(),
        // What Kafka answers when a create is refused by the broker's policy.
        TopicError::LimitReached(_) => ResponseError::PolicyViolation.code(),
        TopicError::Log(e) => log_error_code(e),
        TopicError::Io { .. }
        | TopicError::CorruptMetadata { .. }
        | TopicError::Unavailable { .. } => ResponseError::KafkaStorageError.code(),
    }
}

pub(crate) fn group_error_code(e: GroupError) -> i16 {
    match e {
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::InconsistentProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::UnknownMember => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::SubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::CommitNotDurable | GroupError::ShuttingDown => {
            ResponseError::CoordinatorNotAvailable
        }
    }
    .code()
}

/// The code of a group request's outcome: 0 for success.
pub(crate) fn group_result_code(r: Result<(), GroupError>) -> i16 {
    r.map_or_else(group_error_code, |()| NONE)
}

pub(crate) fn unknown_topic() -> i16 {
    ResponseError::UnknownTopicOrPartition.code()
}

pub(crate) fn config_error_code(e: &ConfigError) -> i16 {
    match e {
        ConfigError::UnsupportedResource(_)
        | ConfigError::OtherBroker(..)
        | ConfigError::UnknownOperation(..) => ResponseError::InvalidRequest.code(),
        ConfigError::BrokerReadOnly
        | ConfigError::NotAList(_)
        | ConfigError::NullValue(_)
        | ConfigError::UnknownName(_)
        | ConfigError::Invalid(_) => ResponseError::InvalidConfig.code(),
        ConfigError::Topic(e) => topic_error_code(e),
    }
}
