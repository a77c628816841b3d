//! Cassandra sessions: how ferry connects to the source, with errors that name the side and the fix.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::policies::host_filter::DcHostFilter;

use crate::source::Routing;
use crate::tls;

/// Where and how to reach Cassandra.
#[derive(Clone)]
pub struct CassandraEndpoint {
    /// Contact points as `host:port`.
    pub contact_points: Vec<String>,
    pub username: Option<String>,
    /// Never printed: see `Debug` below.
    pub password: Option<String>,
    pub connect_timeout_ms: u64,
    pub connections_per_host: usize,
    /// Which data centres reads may use; pools are opened only to nodes that may serve them.
    pub routing: Routing,
    /// `cassandra.connection.ssl.*`; `None`: clear text.
    pub tls: Option<CassandraTls>,
    /// Frame compression (`cassandra.connection.compression`); `None`: uncompressed.
    pub compression: Option<scylla::client::Compression>,
}

/// TLS to Cassandra: the trust store the nodes' certificates must lead to (checked with the IP
/// address dialled: hostname verification is always on) and, for nodes that require one, the
/// client identity.
#[derive(Clone)]
pub struct CassandraTls {
    pub trust_store: PathBuf,
    /// Never printed: see `Debug` below.
    pub trust_store_password: Option<String>,
    pub key_store: Option<PathBuf>,
    pub key_store_password: Option<String>,
}

impl std::fmt::Debug for CassandraTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraTls")
            .field("trust_store", &self.trust_store)
            .field(
                "trust_store_password",
                &self.trust_store_password.as_ref().map(|_| "***"),
            )
            .field("key_store", &self.key_store)
            .field(
                "key_store_password",
                &self.key_store_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl CassandraTls {
    /// The rustls configuration: the files read now, so a missing file, a JKS store or a wrong
    /// password is reported before any connection is tried.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, tls::TlsError> {
        let roots = tls::load_roots(
            &tls::Named {
                path: &self.trust_store,
                key: "cassandra.connection.ssl.trustStore.path",
            },
            self.trust_store_password.as_deref(),
        )?;
        let identity = match &self.key_store {
            Some(path) => Some(tls::load_identity(
                &tls::Named {
                    path,
                    key: "cassandra.connection.ssl.keyStore.path",
                },
                None,
                self.key_store_password.as_deref(),
            )?),
            None => None,
        };
        tls::client_config(tls::ServerCheck::Full(roots), identity).map_err(|e| {
            tls::TlsError::Rejected {
                what: "key store",
                key: "cassandra.connection.ssl.keyStore.path".into(),
                path: self.key_store.clone().unwrap_or_default(),
                detail: e.to_string(),
            }
        })
    }
}

impl std::fmt::Debug for CassandraEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraEndpoint")
            .field("contact_points", &self.contact_points)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("connections_per_host", &self.connections_per_host)
            .field("routing", &self.routing)
            .field("tls", &self.tls)
            .field("compression", &self.compression)
            .finish()
    }
}

impl CassandraEndpoint {
    /// The test bed's Cassandra (scripts/testbed): 127.0.0.1:9042 through toxiproxy.
    pub fn testbed() -> Self {
        CassandraEndpoint {
            contact_points: vec!["127.0.0.1:9042".to_string()],
            username: Some("cassandra".to_string()),
            password: Some("cassandra".to_string()),
            connect_timeout_ms: 10_000,
            connections_per_host: 4,
            routing: Routing::default(),
            tls: None,
            compression: None,
        }
    }
}

/// Opens a session; the error is one line that says which side failed and what to check.
pub async fn connect(ep: &CassandraEndpoint) -> Result<Session> {
    let mut b = SessionBuilder::new()
        .known_nodes(&ep.contact_points)
        .connection_timeout(Duration::from_millis(ep.connect_timeout_ms))
        .pool_size(PoolSize::PerHost(
            NonZeroUsize::new(ep.connections_per_host.max(1)).expect("max(1) is non-zero"),
        ))
        .tcp_nodelay(true)
        .compression(ep.compression)
        // No schema metadata: ferry reads table schemas from system_schema itself, column
        // types from prepared statements, and the one keyspace's replication it plans
        // (`source::replication`). The driver's minimal fetch is three sequential queries,
        // each prepared first: six round trips before the session is ready, 1.2 s at 100 ms
        // each way. The ring (system.local and system.peers) is still read.
        .fetch_schema_metadata(false);
    // Reads stay in the local data centre: no pool to the others (the control connection still
    // reads the whole ring's metadata, through whichever contact point answers).
    if let (Some(dc), false) = (&ep.routing.local_dc, ep.routing.remote_dc_reads) {
        b = b.host_filter(Arc::new(DcHostFilter::new(dc.clone())));
    }
    let tls_config = match &ep.tls {
        Some(t) => Some(Arc::new(
            t.client_config()
                .map_err(|e| anyhow!("the source (Cassandra): {e}"))?,
        )),
        None => None,
    };
    if let Some(config) = &tls_config {
        b = b.tls_context(Some(config.clone()));
    }
    if let Some(user) = &ep.username {
        b = b.user(user, ep.password.as_deref().unwrap_or(""));
    }
    let built = b.build().await;
    let e = match built {
        Ok(session) => return Ok(session),
        Err(e) => e,
    };
    let text = e.to_string();
    let at = ep.contact_points.join(",");
    // TLS problems first. The driver's pool errors keep only the text of the last connection's
    // failure (which may be another node's), so ferry repeats the handshake itself against the
    // first reachable contact point with the same configuration and reads rustls's typed error.
    if let (Some(t), Some(config)) = (&ep.tls, &tls_config) {
        let probe = match first_reachable(&ep.contact_points).await {
            Some(addr) => handshake(
                addr,
                config.clone(),
                Duration::from_millis(ep.connect_timeout_ms),
            )
            .await
            .map(|r| (addr, r)),
            None => None,
        };
        match probe {
            Some((addr, Err(rustls::Error::InvalidCertificate(why)))) => {
                return Err(anyhow!(
                    "the source (Cassandra) at {addr} presented a certificate ferry does not trust ({why:?}) — \
                     cassandra.connection.ssl.trustStore.path ({}) must hold the CA that signed the nodes' \
                     certificates, and each certificate must name the IP address dialled",
                    t.trust_store.display()
                ));
            }
            Some((addr, Err(e))) => {
                return Err(anyhow!(
                    "the source (Cassandra) at {addr} did not answer the TLS handshake as a TLS server ({e}) — \
                     if the nodes do not use client encryption, set cassandra.connection.ssl.enabled=false"
                ));
            }
            _ => {}
        }
    } else if let Some(addr) = first_reachable(&ep.contact_points).await {
        if speaks_tls(addr, Duration::from_millis(ep.connect_timeout_ms)).await {
            return Err(anyhow!(
                "the source (Cassandra) at {addr} requires TLS: set cassandra.connection.ssl.enabled=true \
                 and cassandra.connection.ssl.trustStore.path to the CA that signed the nodes' certificates"
            ));
        }
    }
    Err({
        if text.contains("Authentication")
            || text.contains("bad credentials")
            || text.contains("authenticator")
        {
            anyhow!(
                "Cassandra at {at} refused the credentials of user '{}' — check cassandra.username and the password (cassandra.password or FERRY_CASSANDRA_PASSWORD)",
                ep.username.as_deref().unwrap_or("")
            )
        } else if text.contains("refused")
            || text.contains("timed out")
            || text.contains("Timeout")
            || text.contains("unreachable")
        {
            anyhow!(
                "cannot reach Cassandra at {at} (connection refused or timed out) — check cassandra.host and cassandra.port, and that the node is up"
            )
        } else {
            anyhow!("cannot connect to Cassandra at {at}: {} — check cassandra.host, cassandra.port and the credentials", text.lines().next().unwrap_or(""))
        }
    })
}

/// The first contact point that accepts a TCP connection.
async fn first_reachable(points: &[String]) -> Option<std::net::SocketAddr> {
    for p in points {
        let Ok(addrs) = tokio::net::lookup_host(p.as_str()).await else {
            continue;
        };
        for a in addrs {
            let connect = tokio::net::TcpStream::connect(a);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(3), connect).await {
                return Some(a);
            }
        }
    }
    None
}

/// Whether `addr` completes a TLS handshake (any certificate accepted): after a clear-text
/// session failed, this tells a node that requires client encryption from one that is broken.
async fn speaks_tls(addr: std::net::SocketAddr, timeout: Duration) -> bool {
    match tls::client_config(tls::ServerCheck::None, None) {
        Ok(config) => matches!(
            handshake(addr, Arc::new(config), timeout).await,
            Some(Ok(()))
        ),
        Err(_) => false,
    }
}

/// A TLS handshake with `addr` under `config`: `None` when the TCP connection itself failed,
/// else rustls's verdict (an I/O error mid-handshake, e.g. a clear-text server hanging up, is
/// reported as a handshake failure).
async fn handshake(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Option<Result<(), rustls::Error>> {
    let probe = move || -> Option<Result<(), rustls::Error>> {
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let mut conn = match rustls::ClientConnection::new(config, name) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut sock = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
        sock.set_read_timeout(Some(timeout)).ok()?;
        sock.set_write_timeout(Some(timeout)).ok()?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                let inner = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .cloned();
                return Some(Err(inner.unwrap_or(rustls::Error::General(e.to_string()))));
            }
        }
        Some(Ok(()))
    };
    tokio::task::spawn_blocking(probe).await.ok().flatten()
}
