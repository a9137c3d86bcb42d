//! The users SASL authenticates: who they are, whether they are admins, and the salted SCRAM
//! credentials their passwords are checked against. Loaded once at start from a users file
//! and/or `--sasl-user` entries; the plain passwords are not kept after loading.
//!
//! Format (file: one entry per line; flag/env: entries separated by `;`):
//!
//! ```text
//! # comment lines and blank lines are ignored
//! alice:admin:her password      # NAME:ROLE:PASSWORD, ROLE is `admin` or `user`
//! bob:user:s3cret
//! ```
//!
//! The password is everything after the second `:` (it may contain `:` and spaces; in the
//! `;`-separated form it cannot contain `;`). Names may not contain `:` or control characters.
//!
//! SCRAM credentials are derived at load (RFC 5802: salted password = PBKDF2-HMAC(password,
//! salt, i)) with a fresh random 16-byte salt and [`SCRAM_ITERATIONS`] iterations, one set per
//! hash (SHA-256 and SHA-512), so every user can use every enabled mechanism. PLAIN logins are
//! checked against the same SHA-256 credential (derive with the stored salt, compare in constant
//! time), so no plain password stays in memory.

use std::collections::HashMap;
use std::path::Path;

use thiserror::Error;

use super::scram::{Hash, ScramCredential};

/// PBKDF2 iterations of the derived SCRAM credentials: Kafka's and RFC 7677's minimum (4096).
/// Each costs ~1-3 ms of one core per login at this count (see docs/kafka-compat.md).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A user's role: admins may also use the admin APIs (CreateTopics, DeleteTopics, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

/// One user's credentials.
pub(crate) struct User {
    pub(crate) role: Role,
    pub(crate) sha256: ScramCredential,
    pub(crate) sha512: ScramCredential,
}

/// Every user, by name.
pub struct Users {
    by_name: HashMap<String, User>,
}

impl std::fmt::Debug for Users {
    // Names only: the credentials are secrets and stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

/// Why a users file or entry list was refused.
#[derive(Debug, Error)]
pub enum UsersError {
    #[error("read users file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}, entry {entry}: {reason} (expected NAME:ROLE:PASSWORD, ROLE admin or user)")]
    Malformed {
        origin: String,
        entry: usize,
        reason: String,
    },
    #[error("{origin}: user {0} is listed twice", .name)]
    Duplicate { origin: String, name: String },
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

impl Users {
    /// No users yet.
    pub fn empty() -> Self {
        Users {
            by_name: HashMap::new(),
        }
    }

    /// Adds the entries of a users file (one per line).
    pub fn load_file(&mut self, path: &Path) -> Result<(), UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.add_entries(text.lines(), &path.display().to_string())
    }

    /// Adds `NAME:ROLE:PASSWORD` entries (blank ones and `#` comments skipped); `origin` names
    /// where they come from in errors.
    pub fn add_entries<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a str>,
        origin: &str,
    ) -> Result<(), UsersError> {
        for (i, raw) in entries.into_iter().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |reason: &str| UsersError::Malformed {
                origin: origin.to_string(),
                entry: i + 1,
                reason: reason.to_string(),
            };
            let mut parts = line.splitn(3, ':');
            let name = parts.next().unwrap_or("").trim();
            let role = parts.next().ok_or_else(|| bad("no role"))?.trim();
            let password = parts.next().ok_or_else(|| bad("no password"))?;
            if name.is_empty() {
                return Err(bad("empty name"));
            }
            if name.chars().any(char::is_control) {
                return Err(bad("the name has control characters"));
            }
            let role = match role {
                "admin" => Role::Admin,
                "user" => Role::User,
                _ => return Err(bad("the role is neither admin nor user")),
            };
            if password.is_empty() {
                return Err(bad("empty password"));
            }
            if self.by_name.contains_key(name) {
                return Err(UsersError::Duplicate {
                    origin: origin.to_string(),
                    name: name.to_string(),
                });
            }
            let user = User {
                role,
                sha256: ScramCredential::derive(Hash::Sha256, password, SCRAM_ITERATIONS)?,
                sha512: ScramCredential::derive(Hash::Sha512, password, SCRAM_ITERATIONS)?,
            };
            self.by_name.insert(name.to_string(), user);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Names of the users of role admin (the authorizer's super users).
    pub fn admins(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .iter()
            .filter(|(_, u)| u.role == Role::Admin)
            .map(|(n, _)| n.as_str())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_names_the_bad_one() {
        let mut u = Users::empty();
        u.add_entries(
            ["# admins", "", "alice:admin:pa:ss word", "bob:user:x"],
            "test",
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u.get("alice").unwrap().role, Role::Admin);
        assert_eq!(u.get("bob").unwrap().role, Role::User);
        assert!(!format!("{u:?}").contains("pa:ss"));

        for (bad, why) in [
            ("carol", "no role"),
            ("carol:admin", "no password"),
            ("carol:root:x", "neither admin nor user"),
            (":user:x", "empty name"),
            ("carol:user:", "empty password"),
        ] {
            let e = Users::empty().add_entries([bad], "t").unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = u.add_entries(["bob:user:y"], "t").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
