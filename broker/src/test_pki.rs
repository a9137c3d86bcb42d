//! Certificates for tests and benchmarks of the TLS listeners, made in the run (so none is
//! checked in, and none expires in the repository): a CA, the broker's certificate for
//! `localhost` and `127.0.0.1`, a client certificate, and the bad cases a client must refuse (a
//! certificate from another CA, an expired one). Keys are ECDSA P-256 in PKCS#8 PEM, which
//! OpenSSL (librdkafka, Python) and Java's PEM key stores all read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test CA, with the files of the certificates it issued, all in one directory.
pub struct TestPki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The broker's certificate: `localhost`, `127.0.0.1` and `::1`.
    pub broker: CertFiles,
    /// A client certificate, subject `O=seckill,CN=orders-api` (RFC 2253).
    pub client: CertFiles,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The names the broker's certificates are valid for.
const BROKER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl TestPki {
    /// Makes a CA named `name` and its broker and client certificates in `dir`.
    pub fn generate(dir: &Path, name: &str) -> Result<TestPki, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "seckill tests");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate()?;
        let ca_cert = params.self_signed(&key)?;
        let issuer = Issuer::new(params, key);
        let ca = dir.join(format!("{name}-ca.pem"));
        write(&ca, &ca_cert.pem())?;
        let mut pki = TestPki {
            dir: dir.to_path_buf(),
            issuer,
            ca,
            broker: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            client: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
        };
        pki.broker = pki.issue(&format!("{name}-broker"), Leaf::Broker { expired: false })?;
        pki.client = pki.issue(
            &format!("{name}-client"),
            Leaf::Client {
                cn: "orders-api",
                org: "seckill",
            },
        )?;
        Ok(pki)
    }

    /// A broker certificate of this CA that expired in 2001.
    pub fn expired_broker(&self) -> Result<CertFiles, PkiError> {
        self.issue("expired-broker", Leaf::Broker { expired: true })
    }

    /// A client certificate of this CA with the given subject.
    pub fn client_named(&self, file: &str, cn: &str, org: &str) -> Result<CertFiles, PkiError> {
        self.issue(file, Leaf::Client { cn, org })
    }

    fn issue(&self, file: &str, leaf: Leaf<'_>) -> Result<CertFiles, PkiError> {
        let (mut params, purpose) = match leaf {
            Leaf::Broker { expired } => {
                let mut p = CertificateParams::new(
                    BROKER_NAMES
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>(),
                )?;
                p.distinguished_name.push(DnType::CommonName, "localhost");
                if expired {
                    p.not_before = rcgen::date_time_ymd(2000, 1, 1);
                    p.not_after = rcgen::date_time_ymd(2001, 1, 1);
                }
                (p, ExtendedKeyUsagePurpose::ServerAuth)
            }
            Leaf::Client { cn, org } => {
                let mut p = CertificateParams::new(Vec::<String>::new())?;
                p.distinguished_name.push(DnType::OrganizationName, org);
                p.distinguished_name.push(DnType::CommonName, cn);
                (p, ExtendedKeyUsagePurpose::ClientAuth)
            }
        };
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        write(&files.cert, &cert.pem())?;
        write(&files.key, &key.serialize_pem())?;
        Ok(files)
    }
}

enum Leaf<'a> {
    Broker { expired: bool },
    Client { cn: &'a str, org: &'a str },
}

fn write(path: &Path, pem: &str) -> Result<(), PkiError> {
    std::fs::write(path, pem).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}
