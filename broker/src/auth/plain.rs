//! SASL/PLAIN (RFC 4616): one message, `[authzid] NUL authcid NUL password`. Checked against the
//! user's salted SCRAM-SHA-256 credential, so the broker keeps no plain passwords. PLAIN sends
//! the password in the clear: on an untrusted network it needs TLS, which this broker does not
//! have (see docs/kafka-compat.md), so prefer SCRAM there.

use super::scram::Hash;
use super::users::Users;
use super::{AuthError, Principal};

const MECH: &str = "PLAIN";

/// Checks one PLAIN message.
pub(crate) fn authenticate(users: &Users, input: &[u8]) -> Result<Principal, AuthError> {
    let malformed = |reason: &str| AuthError::Malformed {
        mechanism: MECH,
        reason: reason.to_string(),
    };
    let mut parts = input.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected authzid NUL username NUL password"));
    };
    let authcid =
        std::str::from_utf8(authcid).map_err(|_| malformed("the username is not UTF-8"))?;
    if authcid.is_empty() {
        return Err(malformed("empty username"));
    }
    if password.is_empty() {
        return Err(malformed("empty password"));
    }
    if !authzid.is_empty() && authzid != authcid.as_bytes() {
        return Err(malformed("authorization id differs from the username"));
    }
    let invalid = AuthError::InvalidCredentials { mechanism: MECH };
    let Some(user) = users.get(authcid) else {
        return Err(invalid);
    };
    if !user.sha256.matches(Hash::Sha256, password) {
        return Err(invalid);
    }
    Ok(Principal {
        name: authcid.to_string(),
        role: user.role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_password_and_shape() {
        let mut u = Users::empty();
        u.add_entries(["bob:user:secret"], "t").unwrap();
        assert_eq!(authenticate(&u, b"\0bob\0secret").unwrap().name, "bob");
        assert_eq!(authenticate(&u, b"bob\0bob\0secret").unwrap().name, "bob");
        for bad in [
            &b""[..],
            b"bob",
            b"\0bob",
            b"\0\0x",
            b"\0bob\0",
            b"\0bob\0a\0b",
            b"eve\0bob\0secret",
            b"\0\xff\0x",
        ] {
            assert!(
                matches!(authenticate(&u, bad), Err(AuthError::Malformed { .. })),
                "{bad:?}"
            );
        }
        for bad in [&b"\0bob\0Secret"[..], b"\0eve\0secret"] {
            assert!(matches!(
                authenticate(&u, bad),
                Err(AuthError::InvalidCredentials { .. })
            ));
        }
    }
}
