//! The ACLs, kept in memory for every check and in `acls.json` in the data directory, which is
//! replaced atomically (written, synced, renamed) before a change is answered: an ACL a client
//! was told was created or deleted stays so after a crash.
//!
//! Invariant: the file and the in-memory list hold the same set, without duplicates; a change
//! that cannot be written leaves both as they were.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Acl, AclFilter};

const FILE: &str = "acls.json";

#[derive(Debug, Error)]
pub enum AclStoreError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    acls: Vec<Acl>,
}

#[derive(Debug)]
pub struct AclStore {
    path: PathBuf,
    acls: RwLock<Vec<Acl>>,
}

impl AclStore {
    pub fn open(data_dir: &Path) -> Result<AclStore, AclStoreError> {
        let path = data_dir.join(FILE);
        let acls = match std::fs::read(&path) {
            Ok(bytes) => {
                let p: Persisted =
                    serde_json::from_slice(&bytes).map_err(|e| AclStoreError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                for a in &p.acls {
                    a.validate().map_err(|e| AclStoreError::Corrupt {
                        path: path.clone(),
                        reason: e.0,
                    })?;
                }
                p.acls
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(AclStoreError::Io {
                    context: "read",
                    path,
                    source,
                })
            }
        };
        Ok(AclStore {
            path,
            acls: RwLock::new(acls),
        })
    }

    /// Runs `f` over the current ACLs.
    pub fn with<T>(&self, f: impl FnOnce(&[Acl]) -> T) -> T {
        let acls = self.acls.read().unwrap_or_else(|e| e.into_inner());
        f(&acls)
    }

    /// Adds the ACLs not present yet, durably.
    pub fn create(&self, new: &[Acl]) -> Result<(), AclStoreError> {
        self.change(|acls| {
            for a in new {
                if !acls.contains(a) {
                    acls.push(a.clone());
                }
            }
        })
        .map(drop)
    }

    /// Removes, durably, every ACL one of `filters` matches; returns per filter what it
    /// removed.
    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<Acl>>, AclStoreError> {
        let mut removed = vec![Vec::new(); filters.len()];
        self.change(|acls| {
            acls.retain(|a| {
                let mut keep = true;
                for (i, f) in filters.iter().enumerate() {
                    if f.matches(a) {
                        removed[i].push(a.clone());
                        keep = false;
                    }
                }
                keep
            })
        })?;
        Ok(removed)
    }

    /// Applies `edit` to a copy, writes the copy, and only then makes it the current set.
    fn change(&self, edit: impl FnOnce(&mut Vec<Acl>)) -> Result<(), AclStoreError> {
        let mut acls = self.acls.write().unwrap_or_else(|e| e.into_inner());
        let mut next = acls.clone();
        edit(&mut next);
        if next == *acls {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&Persisted { acls: next.clone() }).map_err(|e| {
            AclStoreError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            }
        })?;
        crate::durable::write_atomically(&self.path, &bytes).map_err(|source| {
            AclStoreError::Io {
                context: "write",
                path: self.path.clone(),
                source,
            }
        })?;
        *acls = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::ANY;

    #[test]
    fn acls_survive_a_reopen_and_deletes_say_what_they_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = AclStore::open(dir.path()).unwrap();
        let a = Acl::parse_entry("User:a;ALLOW;READ,WRITE;TOPIC;LITERAL;t").unwrap();
        s.create(&a).unwrap();
        s.create(&a).unwrap();
        let s = AclStore::open(dir.path()).unwrap();
        assert_eq!(s.with(|x| x.len()), 2);
        let writes = AclFilter::from_wire(ANY, None, ANY, None, None, 4, ANY).unwrap();
        let removed = s.delete(&[writes]).unwrap();
        assert_eq!(removed[0].len(), 1);
        let s = AclStore::open(dir.path()).unwrap();
        assert_eq!(s.with(|x| x.to_vec()), vec![a[0].clone()]);
        std::fs::write(dir.path().join(FILE), b"{").unwrap();
        assert!(matches!(
            AclStore::open(dir.path()),
            Err(AclStoreError::Corrupt { .. })
        ));
    }
}
