//! Hands out producer ids for idempotent producers (InitProducerId). An id must never be reused,
//! also across restarts, or a new producer could be mistaken for an old one's retries. Ids are
//! reserved in blocks: the end of the current block is persisted (atomically) before any id of it
//! is handed out, so a restart continues after the last reserved block.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use thiserror::Error;

const BLOCK: i64 = 1000;
const FILE: &str = "producer_ids.json";

#[derive(Debug, Error)]
pub enum ProducerIdError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("producer ids exhausted")]
    Exhausted,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    /// Every id below this may have been handed out.
    reserved_until: i64,
}

#[derive(Debug)]
struct Cursor {
    next: i64,
    block_end: i64,
}

#[derive(Debug)]
pub struct ProducerIdAllocator {
    path: PathBuf,
    cursor: Mutex<Cursor>,
}

impl ProducerIdAllocator {
    pub fn open(data_dir: &Path) -> Result<Self, ProducerIdError> {
        let path = data_dir.join(FILE);
        let reserved_until = match fs::read(&path) {
            Ok(bytes) => {
                let p: Persisted =
                    serde_json::from_slice(&bytes).map_err(|e| ProducerIdError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if p.reserved_until < 0 {
                    return Err(ProducerIdError::Corrupt {
                        path,
                        reason: format!("negative reserved_until {}", p.reserved_until),
                    });
                }
                p.reserved_until
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(ProducerIdError::Io {
                    context: format!("read {}", path.display()),
                    source: e,
                })
            }
        };
        Ok(ProducerIdAllocator {
            path,
            cursor: Mutex::new(Cursor {
                next: reserved_until,
                block_end: reserved_until,
            }),
        })
    }

    /// A fresh producer id, durable before it is returned.
    pub fn next(&self) -> Result<i64, ProducerIdError> {
        let mut c = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        if c.next >= c.block_end {
            let end = c
                .block_end
                .checked_add(BLOCK)
                .ok_or(ProducerIdError::Exhausted)?;
            self.persist(end)?;
            c.block_end = end;
        }
        let id = c.next;
        c.next += 1;
        Ok(id)
    }

    fn persist(&self, reserved_until: i64) -> Result<(), ProducerIdError> {
        let io = |context: &str| {
            let context = format!("{context} {}", self.path.display());
            move |source| ProducerIdError::Io { context, source }
        };
        let bytes = serde_json::to_vec(&Persisted { reserved_until }).unwrap_or_default();
        crate::durable::write_atomically(&self.path, &bytes).map_err(io("write"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIdAllocator::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).unwrap();
        assert_eq!(b.next().unwrap(), BLOCK);
        fs::write(dir.path().join(FILE), b"{]").unwrap();
        assert!(matches!(
            ProducerIdAllocator::open(dir.path()),
            Err(ProducerIdError::Corrupt { .. })
        ));
    }

    /// A file that exists but cannot be read is an error, never a fresh start at id 0 (which
    /// would hand out ids that producers already hold); a negative mark is corrupt, 0 is not.
    #[test]
    fn an_unreadable_or_negative_mark_is_refused_never_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(FILE)).unwrap();
        assert!(matches!(
            ProducerIdAllocator::open(dir.path()),
            Err(ProducerIdError::Io { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), br#"{"reserved_until": -5}"#).unwrap();
        assert!(matches!(
            ProducerIdAllocator::open(dir.path()),
            Err(ProducerIdError::Corrupt { .. })
        ));
        fs::write(dir.path().join(FILE), br#"{"reserved_until": 0}"#).unwrap();
        let a = ProducerIdAllocator::open(dir.path()).unwrap();
        assert_eq!(a.next().unwrap(), 0);
    }
}
