//! TLS to the target (PostgreSQL / YugabyteDB): libpq's `sslmode` meanings on rustls, the
//! tokio-postgres connector every target connection goes through, and the one-line wording of a
//! refused handshake.
//!
//! tokio-postgres itself knows only disable / prefer / require and no certificate files; the
//! checks `verify-ca` and `verify-full` mean are rustls verifiers chosen here ([`crate::tls`]).
//! The connector is ferry's own rather than tokio-postgres-rustls because `ferry diagnose`
//! reports what the handshake negotiated (protocol, cipher, the server's certificate) and what it
//! cost (round trips counted on the socket, time), and a refused certificate is named by subject
//! and issuer — the adapter crate keeps the session to itself.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::config::{SslMode, TargetTlsSpec};
use crate::tls::session::{CertSummary, Remember, SeenCert, TlsSession};
use crate::tls::{self, Named, ServerCheck, TlsError};

/// The target's TLS settings, with every file already read.
#[derive(Clone)]
pub struct TargetTls {
    mode: SslMode,
    /// How the server's certificate is checked, for messages.
    check: Check,
    /// `None` with `sslmode=disable`.
    config: Option<Arc<ClientConfig>>,
    verifier: Option<Arc<dyn ServerCertVerifier>>,
    root_cert: Option<PathBuf>,
    client_cert: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    None,
    ChainOnly,
    Full,
}

impl std::fmt::Debug for TargetTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetTls")
            .field("mode", &self.mode)
            .field("check", &self.check)
            .field("root_cert", &self.root_cert)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

impl Default for TargetTls {
    /// Clear text (`sslmode=disable`).
    fn default() -> Self {
        TargetTls {
            mode: SslMode::Disable,
            check: Check::None,
            config: None,
            verifier: None,
            root_cert: None,
            client_cert: false,
        }
    }
}

impl TargetTls {
    /// Reads the root certificate and the client identity the spec names and builds the rustls
    /// configuration. Errors name the key and the fix.
    pub fn from_spec(spec: &TargetTlsSpec) -> Result<Self, TlsError> {
        if spec.mode == SslMode::Disable {
            return Ok(TargetTls::default());
        }
        let password = spec.password.as_ref().map(|p| p.expose());
        let roots = match &spec.root_cert {
            Some(path) => Some(tls::load_roots(
                &Named {
                    path,
                    key: "yugabyte.sslrootcert",
                },
                password,
            )?),
            None => None,
        };
        // libpq: `require` with a root certificate checks the chain, as verify-ca does.
        let (check, server_check) = match (spec.mode, roots) {
            (SslMode::VerifyFull, Some(r)) => (Check::Full, ServerCheck::Full(r)),
            (SslMode::VerifyCa | SslMode::Require, Some(r)) => {
                (Check::ChainOnly, ServerCheck::ChainOnly(r))
            }
            _ => (Check::None, ServerCheck::None),
        };
        let identity = match (&spec.client_cert, &spec.client_key) {
            (Some(cert), key) => Some(tls::load_identity(
                &Named {
                    path: cert,
                    key: "yugabyte.sslcert",
                },
                key.as_ref()
                    .map(|k| Named {
                        path: k,
                        key: "yugabyte.sslkey",
                    })
                    .as_ref(),
                password,
            )?),
            // pgJDBC's spelling: a PKCS#12 key store in sslkey alone.
            (None, Some(key)) => Some(tls::load_identity(
                &Named {
                    path: key,
                    key: "yugabyte.sslkey",
                },
                None,
                password,
            )?),
            (None, None) => None,
        };
        let client_cert = identity.is_some();
        let verifier = tls::server_verifier(server_check).map_err(|e| TlsError::Rejected {
            what: "trust store",
            key: "yugabyte.sslrootcert".into(),
            path: spec.root_cert.clone().unwrap_or_default(),
            detail: e.to_string(),
        })?;
        let builder = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let config = match identity {
            Some(id) => builder
                .with_client_auth_cert(id.certs, id.key)
                .map_err(|e| {
                    let (key, path) = match (&spec.client_key, &spec.client_cert) {
                        (Some(k), _) => ("yugabyte.sslkey", k.clone()),
                        (None, c) => ("yugabyte.sslcert", c.clone().unwrap_or_default()),
                    };
                    TlsError::Rejected {
                        what: "client key",
                        key: key.into(),
                        path,
                        detail: format!(
                        "{e} (the private key must belong to the certificate in yugabyte.sslcert)"
                    ),
                    }
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(TargetTls {
            mode: spec.mode,
            check,
            config: Some(Arc::new(config)),
            verifier: Some(verifier),
            root_cert: spec.root_cert.clone(),
            client_cert,
        })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The tokio-postgres mode: TLS is tried first for allow/prefer, demanded from require on.
    pub(crate) fn pg_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as M;
        match self.mode {
            SslMode::Disable => M::Disable,
            SslMode::Allow | SslMode::Prefer => M::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => M::Require,
        }
    }

    /// A connector for one connection, and where it leaves what the handshake saw.
    pub(crate) fn connector(&self) -> (PgTls, Observed) {
        let observed = Observed::default();
        let config = match (&self.config, &self.verifier) {
            (Some(base), Some(verifier)) => {
                // Per connection, so that a refused certificate can be named.
                let mut config = (**base).clone();
                config
                    .dangerous()
                    .set_certificate_verifier(Arc::new(Remember {
                        inner: verifier.clone(),
                        seen: observed.seen.clone(),
                    }));
                Some(Arc::new(config))
            }
            _ => None,
        };
        (
            PgTls {
                config,
                observed: observed.clone(),
            },
            observed,
        )
    }

    /// One line for a connection that failed in or around TLS, naming the target and the fix;
    /// `None` when the failure has nothing to do with TLS.
    pub(crate) fn explain(
        &self,
        e: &tokio_postgres::Error,
        observed: &Observed,
        at: &str,
        user: &str,
    ) -> Option<String> {
        let seen = observed
            .seen
            .lock()
            .ok()
            .and_then(|s| s.as_ref().and_then(|c| CertSummary::of(c)));
        let cert = |c: &Option<CertSummary>| match c {
            Some(c) => format!("(subject {}, issuer {})", c.subject, c.issuer),
            None => String::new(),
        };
        let root = self
            .root_cert
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if let Some(db) = e.as_db_error() {
            // 28000: pg_hba.conf refused this login. Over clear text that means "TLS required".
            if db.code().code() == "28000" && !observed.tls_used() {
                return Some(format!(
                    "target {at}: the server requires TLS: set yugabyte.sslmode=verify-full (with \
                     yugabyte.sslrootcert, the CA that signed the server's certificate) or \
                     yugabyte.sslmode=require (server says: {})",
                    db.message()
                ));
            }
            if db.code().code() == "28000" && !self.client_cert {
                return Some(format!(
                    "target {at}: the server refused user '{user}' over TLS ({}) — if it wants a \
                     client certificate, set yugabyte.sslcert and yugabyte.sslkey (a certificate \
                     whose CN is '{user}', signed by a CA the server trusts)",
                    db.message()
                ));
            }
            if db.code().code() == "28000" {
                return Some(format!(
                    "target {at}: the server refused user '{user}' with the client certificate of \
                     yugabyte.sslcert ({}) — the certificate's CN must be '{user}' and its CA one \
                     the server trusts (ssl_ca_file)",
                    db.message()
                ));
            }
            return None;
        }
        // tokio-postgres's own words when the server answers the SSLRequest with 'N' (it has no
        // error kind to ask); they sit in the error's cause.
        let no_tls = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |err| {
            err.source()
        })
        .any(|err| err.to_string() == "server does not support TLS");
        if no_tls {
            return Some(format!(
                "target {at}: the server does not offer TLS but yugabyte.sslmode={} requires it — \
                 enable TLS on the server (ssl = on), or set yugabyte.sslmode=prefer (TLS when \
                 offered) or disable",
                self.mode.as_str()
            ));
        }
        let r = crate::tls::session::rustls_error(e)?;
        use rustls::AlertDescription as A;
        Some(match r {
            rustls::Error::InvalidCertificate(ce) => match ce {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                    "target {at}: the server's certificate {} is not signed by a CA in \
                     yugabyte.sslrootcert ({root}) — set yugabyte.sslrootcert to the CA \
                     certificate that issued it",
                    cert(&seen)
                ),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "target {at}: the server's certificate {} is not valid for the address \
                     dialled ({}; it names {}) — connect by a name the certificate lists, or use \
                     yugabyte.sslmode=verify-ca to check the CA but not the name",
                    cert(&seen),
                    at.rsplit_once(':').map(|(h, _)| h).unwrap_or(at),
                    seen.as_ref()
                        .map(|c| c.names.join(", "))
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "no names".into())
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                    "target {at}: the server's certificate {} expired on {} — renew the server's \
                     certificate (or correct this machine's clock)",
                    cert(&seen),
                    seen.as_ref()
                        .map(|c| c.not_after_date())
                        .unwrap_or_else(|| "an earlier date".into())
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!(
                        "target {at}: the server's certificate {} is not valid yet — check this \
                         machine's clock and the certificate's dates",
                        cert(&seen)
                    )
                }
                other => format!(
                    "target {at}: the server's certificate {} was refused ({other:?}) — check \
                     yugabyte.sslrootcert and yugabyte.sslmode",
                    cert(&seen)
                ),
            },
            rustls::Error::AlertReceived(
                A::UnknownCA
                | A::BadCertificate
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::AccessDenied
                | A::DecryptError,
            ) => format!(
                "target {at}: the server refused ferry's client certificate (TLS alert {:?}) — \
                 set yugabyte.sslcert and yugabyte.sslkey to a certificate signed by a CA the \
                 server trusts (its ssl_ca_file)",
                match r {
                    rustls::Error::AlertReceived(a) => *a,
                    _ => unreachable!(),
                }
            ),
            other => format!(
                "target {at}: the TLS handshake failed ({other}) — check yugabyte.sslmode and the \
                 server's TLS settings"
            ),
        })
    }
}

/// What one connection's TLS handshake saw: the server's certificate (kept even when refused),
/// and once it succeeded, the session.
#[derive(Clone, Default)]
pub struct Observed {
    seen: SeenCert,
    session: Arc<Mutex<Option<TlsSession>>>,
}

impl Observed {
    /// The session, when the connection uses TLS.
    pub fn session(&self) -> Option<TlsSession> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    fn tls_used(&self) -> bool {
        self.session.lock().map(|s| s.is_some()).unwrap_or(false)
    }
}

/// ferry's tokio-postgres TLS connector (one per connection).
pub struct PgTls {
    config: Option<Arc<ClientConfig>>,
    observed: Observed,
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(PgTlsConnect {
            config: self.config.clone(),
            name,
            observed: self.observed.clone(),
        })
    }
}

pub struct PgTlsConnect {
    config: Option<Arc<ClientConfig>>,
    name: ServerName<'static>,
    observed: Observed,
}

impl<S> TlsConnect<S> for PgTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let config = self.config.ok_or_else(|| {
                io::Error::new(io::ErrorKind::Unsupported, "TLS is off (sslmode=disable)")
            })?;
            let started = Instant::now();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(self.name, stream)
                .await?;
            let handshake_ms = started.elapsed().as_secs_f64() * 1e3;
            let (_, conn) = tls.get_ref();
            // PostgreSQL's SSLRequest took one round trip before the handshake began.
            let session = TlsSession::of(conn, 1, handshake_ms);
            let binding = channel_binding(conn);
            if let Ok(mut s) = self.observed.session.lock() {
                *s = Some(session);
            }
            Ok(PgTlsStream {
                inner: tls,
                binding,
            })
        })
    }
}

/// `tls-server-end-point` (RFC 5929): the server certificate's hash, with its signature's hash
/// (SHA-1 and MD5 upgraded to SHA-256), so SCRAM-SHA-256-PLUS binds the login to this session.
fn channel_binding(conn: &rustls::ClientConnection) -> Option<Vec<u8>> {
    let der = conn.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let alg = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        // md5/sha1/sha256 with RSA, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.3.2" => &ring::digest::SHA256,
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => &ring::digest::SHA384,
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => &ring::digest::SHA512,
        // Ed25519, RSA-PSS (hash in parameters): no binding; SCRAM without -PLUS.
        _ => return None,
    };
    Some(ring::digest::digest(alg, der.as_ref()).as_ref().to_vec())
}

pub struct PgTlsStream<S> {
    inner: tokio_rustls::client::TlsStream<S>,
    binding: Option<Vec<u8>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.binding {
            Some(b) => ChannelBinding::tls_server_end_point(b.clone()),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, Loaded};

    fn load(text: &str) -> Result<Loaded, Vec<String>> {
        load_str(text, "t.properties", &[], &|_| None)
            .map_err(|e| e.errors.iter().map(|e| e.to_string()).collect())
    }

    fn mode(text: &str) -> SslMode {
        load(text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .spec
            .target
            .tls
            .mode
    }

    #[test]
    fn sslmode_takes_libpq_words_and_the_jdbc_switch() {
        assert_eq!(mode(""), SslMode::Prefer, "libpq's and pgJDBC's default");
        assert_eq!(mode("yugabyte.sslmode=DISABLE\n"), SslMode::Disable);
        assert_eq!(mode("yugabyte.sslmode=allow\n"), SslMode::Allow);
        assert_eq!(mode("yugabyte.sslmode=require\n"), SslMode::Require);
        assert_eq!(
            mode("yugabyte.ssl=true\nyugabyte.sslrootcert=/x/root.crt\n"),
            SslMode::VerifyFull,
            "pgJDBC: ssl=true without sslmode is verify-full"
        );
        assert_eq!(mode("yugabyte.ssl=false\n"), SslMode::Disable);
        assert_eq!(
            mode("yugabyte.ssl=true\nyugabyte.sslmode=require\n"),
            SslMode::Require,
            "sslmode wins over ssl"
        );
        let e = load("yugabyte.sslmode=verify-fully\n").unwrap_err();
        assert!(e[0].contains("yugabyte.sslmode"), "{e:?}");
    }

    #[test]
    fn verification_without_a_root_and_files_without_tls_are_refused_by_key() {
        let e = load("yugabyte.sslmode=verify-ca\n").unwrap_err();
        assert!(e[0].contains("yugabyte.sslrootcert is not set"), "{e:?}");
        let e = load("yugabyte.ssl=true\n").unwrap_err();
        assert!(e[0].contains("yugabyte.sslrootcert"), "{e:?}");
        let e = load("yugabyte.sslmode=disable\nyugabyte.sslcert=/x/c.crt\n").unwrap_err();
        assert!(
            e[0].contains("yugabyte.sslcert is set but TLS to the target is off"),
            "{e:?}"
        );
    }

    #[test]
    fn modes_map_onto_tokio_postgres_and_libpqs_require_with_a_root_checks_the_chain() {
        use tokio_postgres::config::SslMode as M;
        let spec = |mode, root: bool| TargetTlsSpec {
            mode,
            root_cert: root.then(|| "/nonexistent/root.crt".into()),
            client_cert: None,
            client_key: None,
            password: None,
        };
        assert_eq!(
            TargetTls::from_spec(&spec(SslMode::Disable, false))
                .unwrap()
                .pg_mode(),
            M::Disable
        );
        let prefer = TargetTls::from_spec(&spec(SslMode::Prefer, false)).unwrap();
        assert_eq!((prefer.pg_mode(), prefer.check), (M::Prefer, Check::None));
        let allow = TargetTls::from_spec(&spec(SslMode::Allow, false)).unwrap();
        assert_eq!(allow.pg_mode(), M::Prefer);
        let require = TargetTls::from_spec(&spec(SslMode::Require, false)).unwrap();
        assert_eq!(
            (require.pg_mode(), require.check),
            (M::Require, Check::None)
        );
        // With a root certificate named, require reads it (and then checks the chain): a missing
        // file is an error naming the key.
        let e = TargetTls::from_spec(&spec(SslMode::Require, true)).unwrap_err();
        assert!(e.to_string().contains("yugabyte.sslrootcert"), "{e}");
    }
}
