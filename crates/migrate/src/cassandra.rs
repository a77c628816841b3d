//! Cassandra sessions: how ferry connects to the source, with errors that name the side and the fix.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::client::PoolSize;
use scylla::policies::host_filter::DcHostFilter;

use crate::source::Routing;

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
}

impl std::fmt::Debug for CassandraEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraEndpoint")
            .field("contact_points", &self.contact_points)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("routing", &self.routing)
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
        // ferry reads table schemas from system_schema itself and column types from prepared
        // statements; the driver needs only keyspaces and tables for routing. Skipping the
        // columns, UDTs and views saves several sequential round trips at connect.
        .fetch_full_schema_metadata(false);
    // Reads stay in the local data centre: no pool to the others (the control connection still
    // reads the whole ring's metadata, through whichever contact point answers).
    if let (Some(dc), false) = (&ep.routing.local_dc, ep.routing.remote_dc_reads) {
        b = b.host_filter(Arc::new(DcHostFilter::new(dc.clone())));
    }
    if let Some(user) = &ep.username {
        b = b.user(user, ep.password.as_deref().unwrap_or(""));
    }
    b.build().await.map_err(|e| {
        let text = e.to_string();
        let at = ep.contact_points.join(",");
        if text.contains("Authentication") || text.contains("bad credentials") || text.contains("authenticator") {
            anyhow!(
                "Cassandra at {at} refused the credentials of user '{}' — check cassandra.username and the password (cassandra.password or FERRY_CASSANDRA_PASSWORD)",
                ep.username.as_deref().unwrap_or("")
            )
        } else if text.contains("refused") || text.contains("timed out") || text.contains("Timeout") || text.contains("unreachable") {
            anyhow!(
                "cannot reach Cassandra at {at} (connection refused or timed out) — check cassandra.host and cassandra.port, and that the node is up"
            )
        } else {
            anyhow!("cannot connect to Cassandra at {at}: {} — check cassandra.host, cassandra.port and the credentials", text.lines().next().unwrap_or(""))
        }
    })
}
