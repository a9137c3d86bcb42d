//! Why the coordinator refused a group request. The protocol layer turns each into its Kafka
//! error code in one place (`protocol/error.rs`), as it does for storage errors.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("the session timeout is outside the broker's bounds")]
    InvalidSessionTimeout,
    #[error("the member's protocols share none with the group")]
    InconsistentProtocol,
    /// A new member gets its id first and must join again with it (KIP-394).
    #[error("a new member must join again with the id it was given")]
    MemberIdRequired,
    #[error("unknown member")]
    UnknownMember,
    #[error("the request is from another generation")]
    IllegalGeneration,
    #[error("the group is rebalancing; join again")]
    RebalanceInProgress,
    #[error("the commit's metadata is too large")]
    OffsetMetadataTooLarge,
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The commit could not be made durable; the client retries.
    #[error("the commit could not be made durable")]
    CommitNotDurable,
    /// Another member now holds this static member's `group.instance.id` (KIP-345): this
    /// member was replaced and must stop.
    #[error("another member holds this group.instance.id")]
    FencedInstanceId,
    /// DeleteGroups of a group that still has members.
    #[error("the group has members; only empty groups can be deleted")]
    NonEmptyGroup,
    #[error("no such group")]
    GroupIdNotFound,
    /// OffsetDelete of a topic the group's members consume now.
    #[error("the group's members consume this topic")]
    SubscribedToTopic,
    /// The broker is shutting down; the client finds the coordinator again and retries.
    #[error("the coordinator is shutting down")]
    ShuttingDown,
}
