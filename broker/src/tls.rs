//! TLS for the `SSL` and `SASL_SSL` listeners, with rustls: the broker's certificate and key
//! from PEM files, TLS 1.2 and 1.3 only (rustls has nothing older), and optional client
//! certificates (Kafka's `ssl.client.auth`), whose subject becomes the connection's principal
//! the way Kafka names it (`CN=client,O=shop`, RFC 2253 order).
//!
//! The certificate is reloaded without a restart: a handshake at most once a second looks at
//! the two files' modification times and sizes, and when they changed, loads them again. A
//! broken pair (unreadable, or a key that does not match the certificate) is logged and the old
//! one kept, so renewing a certificate can never take the listener down. The client CA file is
//! read once, at start.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Kafka's `ssl.client.auth`: whether clients must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// Asked for; a client without one is served as `ANONYMOUS`, one with a bad one refused.
    Requested,
    /// A client without a certificate signed by the client CA is refused.
    Required,
}

impl FromStr for ClientAuth {
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err(TlsError::Config(format!(
                "ssl client auth {s:?} is not one of none, requested, required"
            ))),
        }
    }
}

/// Where the TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the broker's certificate, then any intermediates.
    pub certificate: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: the CAs client certificates must chain to; required unless `client_auth` is none.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no {what} in PEM form")]
    Empty { path: PathBuf, what: &'static str },
    #[error("the key in {key} does not belong to the certificate in {certificate}: {reason}")]
    Mismatch {
        certificate: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    ClientCa(String),
}

/// How long a client may take to finish the TLS handshake before the connection is closed: a
/// connection stuck there holds a connection slot like any other.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the acceptor every TLS listener shares.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = match (files.client_auth, &files.client_ca) {
        (ClientAuth::None, None) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::None, Some(_)) => {
            return Err(TlsError::Config(
                "a client CA file is given but client authentication is none: set it to requested or required".into(),
            ))
        }
        (_, None) => {
            return Err(TlsError::Config(
                "client authentication needs a client CA file".into(),
            ))
        }
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(format!("{}: {e}", ca.display())))?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == ClientAuth::Requested {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?
        }
    };
    let resolver = ReloadingCertificate::load(files, provider.clone())?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The principal of a client certificate: its subject, as Kafka's default
/// `ssl.principal.mapping.rules` give it (X500Principal's RFC 2253 form: the last RDN first,
/// `,` between them, no spaces). `None` if the certificate cannot be parsed (rustls already
/// verified it, so that does not happen for a chain it accepted).
pub fn certificate_principal(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = attr.as_str().map(escape_rfc2253).unwrap_or_default();
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let name: Vec<String> = rdns.into_iter().rev().collect();
    Some(name.join(","))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |reason: String| TlsError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The broker's certificate and key, reloaded when their files change.
#[derive(Debug)]
struct ReloadingCertificate {
    certificate: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    /// What the files looked like when `key` was loaded.
    stamp: Stamp,
    checked: Instant,
}

/// Modification time and size of both files: a renewal changes at least one.
type Stamp = [(Option<SystemTime>, u64); 2];

/// How often a handshake looks at the files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl ReloadingCertificate {
    fn load(files: &TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamp = stamp(&files.certificate, &files.key);
        let key = certified_key(&files.certificate, &files.key, &provider)?;
        Ok(ReloadingCertificate {
            certificate: files.certificate.clone(),
            key: files.key.clone(),
            provider,
            current: Mutex::new(Current {
                key: Arc::new(key),
                stamp,
                checked: Instant::now(),
            }),
        })
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.checked.elapsed() >= CHECK_EVERY {
            current.checked = Instant::now();
            let now = stamp(&self.certificate, &self.key);
            if now != current.stamp {
                current.stamp = now;
                match certified_key(&self.certificate, &self.key, &self.provider) {
                    Ok(key) => {
                        tracing::info!(certificate = %self.certificate.display(), "TLS certificate reloaded");
                        current.key = Arc::new(key);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one")
                    }
                }
            }
        }
        Some(current.key.clone())
    }
}

/// Every client will refuse a certificate outside its validity period: say so at load, loudly,
/// rather than leave it to each client's log. Served anyway (as Kafka does): the operator may
/// be about to replace it, and refusing to start would take down the other listeners too.
fn warn_unless_valid_now(leaf: &CertificateDer<'_>, path: &Path) {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return;
    };
    let validity = cert.validity();
    if !validity.is_valid() {
        tracing::error!(
            certificate = %path.display(),
            not_before = %validity.not_before,
            not_after = %validity.not_after,
            "the broker's TLS certificate is not valid now: clients will refuse it"
        );
    }
}

fn stamp(certificate: &Path, key: &Path) -> Stamp {
    [certificate, key].map(|p| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    })
}

fn certified_key(
    certificate: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(certificate)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Read {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Read {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if let Some(leaf) = chain.first() {
        warn_unless_valid_now(leaf, certificate);
    }
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        certificate: certificate.to_path_buf(),
        key: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_names() {
        assert_eq!(
            "Required".parse::<ClientAuth>().unwrap(),
            ClientAuth::Required
        );
        assert_eq!("none".parse::<ClientAuth>().unwrap(), ClientAuth::None);
        assert!("optional".parse::<ClientAuth>().is_err());
    }

    #[cfg(feature = "harness")]
    #[test]
    fn the_principal_is_the_subject_in_kafkas_order() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::test_pki::TestPki::generate(dir.path(), "unit").unwrap();
        let pem = std::fs::read(&pki.client.cert).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(
            certificate_principal(&der).as_deref(),
            Some("O=seckill,CN=orders-api"),
            "as `openssl x509 -subject -nameopt RFC2253` prints it"
        );
        let odd = pki.client_named("odd", "a,b", "x+y").unwrap();
        let der = CertificateDer::from_pem_slice(&std::fs::read(odd.cert).unwrap()).unwrap();
        assert_eq!(
            certificate_principal(&der).as_deref(),
            Some("O=x\\+y,CN=a\\,b")
        );
    }

    #[test]
    fn rfc2253_escapes_what_it_must() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253("plain"), "plain");
    }
}
