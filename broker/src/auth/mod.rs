//! SASL authentication and the admin check: which mechanisms are enabled, the users
//! ([`users`]), the mechanisms themselves ([`plain`], [`scram`]), and [`Exchange`], one
//! connection's authentication in progress. No I/O and no Kafka framing here: the protocol
//! layer (`protocol/sasl_handshake.rs`, `protocol/sasl_authenticate.rs`) carries the bytes, the
//! connection keeps the authenticated [`Principal`].
//!
//! Off unless users are configured: a broker without users serves every client unauthenticated
//! (and treats each as an admin), as it always did on loopback.

mod plain;
mod scram;
pub mod users;

use std::str::FromStr;

use thiserror::Error;

pub use users::{Role, Users, UsersError, SCRAM_ITERATIONS};

/// A SASL mechanism, by the name Kafka clients use (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Error)]
#[error("unknown SASL mechanism {0:?} (known: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")]
pub struct UnknownMechanism(pub String);

impl FromStr for Mechanism {
    type Err = UnknownMechanism;
    /// Exact names, as Kafka compares them (case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMechanism(s.to_string()))
    }
}

/// SASL settings of a broker that authenticates.
#[derive(Debug)]
pub struct SaslConfig {
    pub users: Users,
    /// Offered in SaslHandshake, in this order.
    pub mechanisms: Vec<Mechanism>,
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Why an authentication step failed. Every variant ends the connection after the answer.
#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password or unknown user: one message for both, as Kafka does.
    #[error("Authentication failed: invalid credentials with SASL mechanism {mechanism}")]
    InvalidCredentials { mechanism: &'static str },
    #[error("Authentication failed: malformed {mechanism} message: {reason}")]
    Malformed {
        mechanism: &'static str,
        reason: String,
    },
    #[error("Authentication failed: {0}")]
    IllegalState(String),
    #[error("Authentication failed: internal error: {0}")]
    Internal(String),
}

/// One connection's authentication in progress, for the mechanism chosen in SaslHandshake.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    scram: Option<scram::ScramServer>,
}

/// The outcome of one SaslAuthenticate step.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes back and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated; send these bytes (possibly empty) as the last reply.
    Done(Principal, Vec<u8>),
}

impl Exchange {
    pub fn start(mechanism: Mechanism) -> Self {
        let scram = match mechanism {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(scram::ScramServer::new(mechanism, scram::Hash::Sha256)),
            Mechanism::ScramSha512 => Some(scram::ScramServer::new(mechanism, scram::Hash::Sha512)),
        };
        Exchange { mechanism, scram }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds the client's next message.
    pub fn step(&mut self, users: &Users, input: &[u8]) -> Result<Step, AuthError> {
        match &mut self.scram {
            None => plain::authenticate(users, input).map(|p| Step::Done(p, Vec::new())),
            Some(s) => s.step(users, input).map(|st| match st {
                scram::ScramStep::Challenge(c) => Step::Continue(c),
                scram::ScramStep::Done(p, v) => Step::Done(p, v),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn users() -> &'static Users {
        static U: OnceLock<Users> = OnceLock::new();
        U.get_or_init(|| {
            let mut u = Users::empty();
            u.add_entries(["alice:user:pw"], "t").unwrap();
            u
        })
    }

    proptest! {
        // Whatever a client sends, in whatever order, an exchange answers or refuses: it never
        // panics (the fuzz-safe parse the connection relies on).
        #[test]
        fn any_bytes_are_answered_or_refused(
            first in proptest::collection::vec(any::<u8>(), 0..200),
            second in proptest::collection::vec(any::<u8>(), 0..200),
            scram_like in "n,(a=[a-z=2CD]{0,5})?,n=[a-z=2CD]{0,8},r=[ -~]{0,20}(,[a-z]=[ -~]{0,8}){0,2}",
        ) {
            for m in Mechanism::ALL {
                for input in [&first[..], scram_like.as_bytes()] {
                    let mut ex = Exchange::start(m);
                    let _ = ex.step(users(), input);
                    let _ = ex.step(users(), &second);
                    let _ = ex.step(users(), b"c=biws,r=x,p=AAAA");
                }
            }
        }
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(m.name().parse::<Mechanism>().unwrap(), m);
        }
        assert!("scram-sha-256".parse::<Mechanism>().is_err());
        assert!("GSSAPI".parse::<Mechanism>().is_err());
    }
}
