//! What one TLS handshake negotiated and what it cost, for `ferry diagnose` and for the error
//! messages of a handshake that failed. Side-neutral: the target's connector fills it today, and a
//! Cassandra endpoint's handshake (also rustls) can fill the same type.

use std::io;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

/// A certificate that expires within this many days is a warning in `ferry diagnose`.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// One endpoint's TLS session: protocol, cipher, the server's certificate, and what the handshake
/// cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsSession {
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: String,
    /// The negotiated cipher suite, as rustls names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The server certificate's subject and issuer (RFC 4514 form, `CN=…`).
    pub subject: String,
    pub issuer: String,
    /// The end of the certificate's validity (UTC, `YYYY-MM-DD`), and the whole days left.
    pub not_after: String,
    pub days_to_expiry: i64,
    /// Round trips before the handshake starts (PostgreSQL's SSLRequest: 1; Cassandra, which
    /// speaks TLS from the first byte: 0).
    pub negotiation_round_trips: u32,
    /// Round trips of the TLS handshake itself, from the handshake rustls completed: a full
    /// TLS 1.3 handshake takes 1 (2 after a HelloRetryRequest), a full TLS 1.2 one 2, a resumed
    /// one 1. The time below is measured; on a path of known round trip the two agree.
    pub handshake_round_trips: u32,
    /// `full`, `full after HelloRetryRequest`, `resumed`.
    pub handshake_kind: String,
    /// Time of the TLS handshake alone.
    pub handshake_ms: f64,
}

impl TlsSession {
    /// Reads the facts off an established rustls client connection; `negotiation_round_trips`
    /// are the protocol's own before the handshake, `handshake_ms` the handshake's measured time.
    pub fn of(
        conn: &rustls::ClientConnection,
        negotiation_round_trips: u32,
        handshake_ms: f64,
    ) -> Self {
        use rustls::HandshakeKind as K;
        let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        let (handshake_round_trips, handshake_kind) = match conn.handshake_kind() {
            Some(K::Resumed) => (1, "resumed"),
            Some(K::FullWithHelloRetryRequest) => (2, "full after HelloRetryRequest"),
            _ if tls13 => (1, "full"),
            _ => (2, "full"),
        };
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(v) => format!("{v:?}"),
            None => "unknown".to_string(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_else(|| "unknown".into());
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| CertSummary::of(c));
        let (subject, issuer, not_after, days_to_expiry) = match cert {
            Some(c) => (
                c.subject.clone(),
                c.issuer.clone(),
                c.not_after_date(),
                c.days_left(now_unix()),
            ),
            None => (String::new(), String::new(), String::new(), 0),
        };
        TlsSession {
            protocol,
            cipher,
            subject,
            issuer,
            not_after,
            days_to_expiry,
            negotiation_round_trips,
            handshake_round_trips,
            handshake_kind: handshake_kind.into(),
            handshake_ms,
        }
    }

    /// All round trips TLS adds to opening a connection.
    pub fn round_trips(&self) -> u32 {
        self.negotiation_round_trips + self.handshake_round_trips
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The parts of a certificate an error message or a report names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub not_after_unix: i64,
    /// The subject alternative names (`IP:127.0.0.1`, `DNS:localhost`).
    pub names: Vec<String>,
}

impl CertSummary {
    /// `None` when the bytes are not an X.509 certificate.
    pub fn of(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            Some(format!("DNS:{d}"))
                        }
                        x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                            4 => Some(format!(
                                "IP:{}",
                                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
                            )),
                            16 => <[u8; 16]>::try_from(*ip)
                                .ok()
                                .map(|b| format!("IP:{}", std::net::Ipv6Addr::from(b))),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(CertSummary {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after_unix: cert.validity().not_after.timestamp(),
            names,
        })
    }

    pub fn not_after_date(&self) -> String {
        chrono::DateTime::from_timestamp(self.not_after_unix, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| self.not_after_unix.to_string())
    }

    /// Whole days from `now_unix` to the end of validity (negative once expired).
    pub fn days_left(&self, now_unix: i64) -> i64 {
        (self.not_after_unix - now_unix).div_euclid(86_400)
    }
}

/// The server certificate a handshake was shown, kept whether or not it passed, so that a
/// refusal can name its subject and issuer.
pub type SeenCert = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// Wraps a verifier to remember the end-entity certificate it was asked about.
#[derive(Debug)]
pub struct Remember {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub seen: SeenCert,
}

impl ServerCertVerifier for Remember {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The rustls error inside an error chain (tokio-rustls wraps it in an `io::Error`, drivers wrap
/// that again).
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                    return Some(r);
                }
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_floors_and_goes_negative() {
        let c = CertSummary {
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
            not_after_unix: 10 * 86_400,
            names: vec![],
        };
        assert_eq!(c.days_left(0), 10);
        assert_eq!(c.days_left(86_400 + 1), 8);
        assert_eq!(c.days_left(11 * 86_400), -1);
        assert_eq!(c.not_after_date(), "1970-01-11");
    }
}
