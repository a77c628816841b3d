//! The one TLS stack of the binary: rustls with the ring provider, for the Cassandra source (the
//! scylla driver's `rustls-023` feature) and the PostgreSQL/YugabyteDB target alike.
//!
//! This module owns reading trust stores and client identities (PEM or PKCS#12, whatever the file
//! is named; a legacy JKS file is refused with the `keytool` command that converts it) and the
//! server-certificate checks libpq's `sslmode` values mean. It never prints a password: errors name
//! the file and what to fix.
//!
//! Why rustls: reqwest already brings it (with ring) into the tree, the scylla driver and
//! tokio-postgres both take an `Arc<ClientConfig>` through thin adapters, and it needs no system
//! OpenSSL at build or run time, so the one static binary behaves the same on every machine.

pub mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What went wrong while loading TLS material; each message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // `cause`, not `source`: the message already says it, and a source would be printed twice
    // by the CLI's `{:#}`.
    #[error("cannot read {what} {path}: {cause} — check {key}")]
    Read {
        what: &'static str,
        key: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{what} {path} is a Java KeyStore (JKS), which ferry does not read — convert it to PKCS#12: keytool -importkeystore -srckeystore {path} -destkeystore {p12} -deststoretype PKCS12, then set {key} to the new file"
    )]
    Jks {
        what: &'static str,
        key: String,
        path: PathBuf,
        p12: PathBuf,
    },
    #[error("the password does not open {what} {path} (PKCS#12) — check {key}")]
    BadPassword {
        what: &'static str,
        key: String,
        path: PathBuf,
    },
    #[error("{what} {path} is neither PEM nor PKCS#12 ({detail}) — check {key}")]
    Unreadable {
        what: &'static str,
        key: String,
        path: PathBuf,
        detail: String,
    },
    #[error("{what} {path} holds no {missing} — check {key}")]
    Missing {
        what: &'static str,
        key: String,
        path: PathBuf,
        missing: &'static str,
    },
    #[error("{what} {path}: {detail} — check {key}")]
    Rejected {
        what: &'static str,
        key: String,
        path: PathBuf,
        detail: String,
    },
}

/// The crypto provider every TLS configuration of the binary uses. Explicit, because both ring
/// (through reqwest) and aws-lc-rs (through the driver's tokio-rustls) are compiled in, and rustls
/// refuses to guess between two.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A file the user named, with the configuration key that named it (for the error messages).
#[derive(Debug, Clone)]
pub struct Named<'a> {
    pub path: &'a Path,
    pub key: &'a str,
}

/// How a file's bytes are laid out, judged by content rather than by its name.
#[derive(Debug, PartialEq, Eq)]
enum Format {
    Pem,
    Pkcs12,
    Jks,
}

fn format_of(bytes: &[u8]) -> Format {
    if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) || bytes.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE])
    {
        // JKS and JCEKS magic numbers.
        Format::Jks
    } else if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        Format::Pem
    } else {
        Format::Pkcs12
    }
}

fn read(what: &'static str, file: &Named<'_>) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file.path).map_err(|cause| TlsError::Read {
        what,
        key: file.key.to_string(),
        path: file.path.to_path_buf(),
        cause,
    })
}

fn p12_archive(
    what: &'static str,
    file: &Named<'_>,
    bytes: &[u8],
    password: Option<&str>,
) -> Result<p12_keystore::Pkcs12Archive, TlsError> {
    p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password.unwrap_or("")).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => TlsError::BadPassword {
            what,
            key: password_key(file.key),
            path: file.path.to_path_buf(),
        },
        other => TlsError::Unreadable {
            what,
            key: file.key.to_string(),
            path: file.path.to_path_buf(),
            detail: other.to_string(),
        },
    })
}

/// `x.path` → `x.password`: the key a user fixes when a PKCS#12 password is wrong.
fn password_key(path_key: &str) -> String {
    match path_key.strip_suffix(".path") {
        Some(stem) => format!("{stem}.password"),
        // The target's files share one password key, as in the JDBC drivers.
        None if path_key.starts_with("yugabyte.ssl") => "yugabyte.sslpassword".into(),
        None => format!("the password for {path_key}"),
    }
}

fn jks(what: &'static str, file: &Named<'_>) -> TlsError {
    TlsError::Jks {
        what,
        key: file.key.to_string(),
        path: file.path.to_path_buf(),
        p12: file.path.with_extension("p12"),
    }
}

/// The certificates a trust store holds: every certificate of a PEM file, or every certificate
/// bag of a PKCS#12 file (Java's trusted-entry attribute is not required: a file the user names
/// as a trust store is trusted whole).
pub fn load_roots(file: &Named<'_>, password: Option<&str>) -> Result<RootCertStore, TlsError> {
    const WHAT: &str = "trust store";
    let bytes = read(WHAT, file)?;
    let certs: Vec<CertificateDer<'static>> = match format_of(&bytes) {
        Format::Jks => return Err(jks(WHAT, file)),
        Format::Pem => CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Unreadable {
                what: WHAT,
                key: file.key.to_string(),
                path: file.path.to_path_buf(),
                detail: e.to_string(),
            })?,
        Format::Pkcs12 => p12_archive(WHAT, file, &bytes, password)?
            .certs
            .iter()
            .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
            .collect(),
    };
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what: WHAT,
            key: file.key.to_string(),
            path: file.path.to_path_buf(),
            missing: "certificate",
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::Rejected {
            what: WHAT,
            key: file.key.to_string(),
            path: file.path.to_path_buf(),
            detail: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A client certificate chain and its private key, for mutual TLS.
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certs", &self.certs.len())
            .field("key", &"***")
            .finish()
    }
}

/// A client identity from one PKCS#12 key store (key + chain, opened with `password`), or from a
/// PEM certificate file plus a PEM key file (`key` given, or the key in the same PEM file).
pub fn load_identity(
    cert: &Named<'_>,
    key: Option<&Named<'_>>,
    password: Option<&str>,
) -> Result<Identity, TlsError> {
    const WHAT: &str = "key store";
    let bytes = read(WHAT, cert)?;
    match format_of(&bytes) {
        Format::Jks => Err(jks(WHAT, cert)),
        Format::Pkcs12 => {
            let archive = p12_archive(WHAT, cert, &bytes, password)?;
            let Some(bag) = archive.keys.first() else {
                return Err(TlsError::Missing {
                    what: WHAT,
                    key: cert.key.to_string(),
                    path: cert.path.to_path_buf(),
                    missing: "private key",
                });
            };
            // The leaf is the certificate bag sharing the key's local id; the rest is its chain.
            let id = bag.local_key_id.as_ref().map(|id| id.0.clone());
            let mut certs: Vec<&p12_keystore::CertificateBag> = archive.certs.iter().collect();
            certs.sort_by_key(|c| id.is_none() || c.local_key_id != id);
            if certs.is_empty() {
                return Err(TlsError::Missing {
                    what: WHAT,
                    key: cert.key.to_string(),
                    path: cert.path.to_path_buf(),
                    missing: "certificate",
                });
            }
            Ok(Identity {
                certs: certs
                    .iter()
                    .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
                    .collect(),
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bag.key.as_der().to_vec())),
            })
        }
        Format::Pem => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::Unreadable {
                    what: "certificate",
                    key: cert.key.to_string(),
                    path: cert.path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::Missing {
                    what: "certificate file",
                    key: cert.key.to_string(),
                    path: cert.path.to_path_buf(),
                    missing: "certificate",
                });
            }
            let (key_file, key_bytes) = match key {
                Some(k) => (k.clone(), read("private key", k)?),
                None => (cert.clone(), bytes.clone()),
            };
            if key_bytes
                .windows(29)
                .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
            {
                return Err(TlsError::Rejected {
                    what: "private key",
                    key: key_file.key.to_string(),
                    path: key_file.path.to_path_buf(),
                    detail: "the key is encrypted; give an unencrypted PKCS#8 key or a PKCS#12 key store with its password".into(),
                });
            }
            let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| TlsError::Missing {
                what: "private key file",
                key: key_file.key.to_string(),
                path: key_file.path.to_path_buf(),
                missing: "PEM private key (PKCS#8, PKCS#1 or SEC1)",
            })?;
            Ok(Identity { certs, key })
        }
    }
}

/// How the server's certificate is checked (libpq's sslmode meanings; Cassandra uses `Full`).
#[derive(Debug)]
pub enum ServerCheck {
    /// Encrypt, check nothing (`prefer`, and `require` without a root certificate).
    None,
    /// The chain must lead to one of these roots; the name is not checked (`verify-ca`).
    ChainOnly(RootCertStore),
    /// The chain and the host name or IP address dialled (`verify-full`, Cassandra's default).
    Full(RootCertStore),
}

/// A client configuration for one side.
pub fn client_config(
    check: ServerCheck,
    identity: Option<Identity>,
) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier(check)?);
    match identity {
        Some(id) => builder.with_client_auth_cert(id.certs, id.key),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The verifier a [`ServerCheck`] means (for callers that wrap it, e.g. to name a refused
/// certificate).
pub fn server_verifier(check: ServerCheck) -> Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
    let provider = provider();
    Ok(match check {
        ServerCheck::Full(roots) => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?
        }
        ServerCheck::ChainOnly(roots) => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            Arc::new(ChainOnly(inner))
        }
        ServerCheck::None => Arc::new(AcceptAny(provider)),
    })
}

type SigResult = Result<HandshakeSignatureValid, rustls::Error>;

/// Accepts any server certificate (the handshake signatures are still checked, so the session is
/// encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> SigResult {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> SigResult {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain (trust, validity dates, usage) and forgives only a name mismatch.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> SigResult {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> SigResult {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        assert_eq!(
            format_of(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]),
            Format::Jks
        );
        assert_eq!(format_of(&[0xCE, 0xCE, 0xCE, 0xCE]), Format::Jks);
        assert_eq!(
            format_of(b"junk\n-----BEGIN CERTIFICATE-----\n"),
            Format::Pem
        );
        assert_eq!(format_of(&[0x30, 0x82, 0x04, 0x00]), Format::Pkcs12);
    }

    #[test]
    fn a_wrong_password_names_the_password_key_not_the_password() {
        assert_eq!(
            password_key("cassandra.connection.ssl.keyStore.path"),
            "cassandra.connection.ssl.keyStore.password"
        );
        let e = TlsError::BadPassword {
            what: "key store",
            key: password_key("cassandra.connection.ssl.keyStore.path"),
            path: "/x/client.p12".into(),
        };
        assert!(e
            .to_string()
            .contains("cassandra.connection.ssl.keyStore.password"));
    }

    #[test]
    fn jks_is_refused_with_the_keytool_command() {
        let dir = std::env::temp_dir().join(format!("ferry-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("truststore.jks");
        std::fs::write(&path, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let e = load_roots(
            &Named {
                path: &path,
                key: "cassandra.connection.ssl.trustStore.path",
            },
            None,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("keytool -importkeystore"), "{text}");
        assert!(text.contains("-deststoretype PKCS12"), "{text}");
        assert!(!text.contains('\n'));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_names_the_key() {
        let path = Path::new("/nonexistent/ca.pem");
        let e = load_roots(
            &Named {
                path,
                key: "yugabyte.sslrootcert",
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("yugabyte.sslrootcert"), "{e}");
    }
}
