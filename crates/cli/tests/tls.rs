//! TLS to the target (issue 15) against the real test bed: PostgreSQL with `ssl = on`, the
//! TLS-only database `ferry_tls` (password over TLS; clear text refused by pg_hba.conf) and
//! `ferry_mtls` (password and a client certificate whose CN is the role), both through the three
//! toxiproxy endpoints.
//!
//! The full type-mix table migrates exactly (checked value by value by `ferry validate`) with
//! verify-full and with mutual TLS (PEM and PKCS#12); `status` and `diagnose` work over TLS; each
//! bad input ends in one line naming the target and the fix, exit code 2, nothing written. The
//! cases a shared server cannot show — a server without TLS, an expired certificate — run against
//! a throwaway PostgreSQL started by the test itself (a real server, never a fake).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_migrate::config::{SslMode, TargetTlsSpec};
use ferry_migrate::sink::TargetEndpoint;
use ferry_migrate::target_tls::TargetTls;

/// The test bed's TLS material (`scripts/testbed env`).
struct Material {
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    client_p12: PathBuf,
}

fn material() -> Material {
    common::testbed();
    let out = Command::new(common::repo_root().join("scripts/testbed"))
        .arg("env")
        .output()
        .expect("scripts/testbed env");
    let env = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |k: &str| -> PathBuf {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("scripts/testbed env prints no {k}"))
            .into()
    };
    let m = Material {
        ca: get("FERRY_TLS_CA"),
        client_cert: get("FERRY_TLS_CLIENT_CERT"),
        client_key: get("FERRY_TLS_CLIENT_KEY"),
        client_p12: get("FERRY_TLS_CLIENT_P12"),
    };
    assert!(m.ca.exists(), "{} missing", m.ca.display());
    m
}

fn run(args: &[&str], cfg: &Path, extra: &[&str]) -> Output {
    common::ferry()
        .args(args)
        .arg("-c")
        .arg(cfg)
        .args(extra)
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A configuration migrating `ks.table` into `schema.table` of `db` as `user` (password = user).
fn config(name: &str, ks: &str, table: &str, schema: &str, db: &str, tls: &str) -> PathBuf {
    common::write_config(
        name,
        &format!(
            "cassandra.host=127.0.0.1\ncassandra.port=9042\ncassandra.localDC=datacenter1\n\
             cassandra.username=cassandra\ncassandra.fetchSizeInRows=500\n\
             yugabyte.host=127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435\nyugabyte.database={db}\n\
             yugabyte.username={db}\nyugabyte.password={db}\nyugabyte.loadBalanceHosts=true\n\
             table.source.keyspace={ks}\ntable.source.table={table}\n\
             table.target.schema={schema}\ntable.target.table={table}\n\
             ferry.runsDir={runs}\n{tls}\n",
            runs = std::env::temp_dir().join("ferry-tests/tls-runs").display()
        ),
    )
}

/// A TLS connection to `db` as its own role, through ferry's one target connector: how the test
/// looks into the TLS-only databases.
async fn tls_client(m: &Material, db: &str) -> tokio_postgres::Client {
    let mtls = db == "ferry_mtls";
    let tls = TargetTls::from_spec(&TargetTlsSpec {
        mode: SslMode::VerifyFull,
        root_cert: Some(m.ca.clone()),
        client_cert: mtls.then(|| m.client_cert.clone()),
        client_key: mtls.then(|| m.client_key.clone()),
        password: None,
    })
    .expect("test bed TLS material");
    let ep = TargetEndpoint {
        hosts: vec![("127.0.0.1".into(), 5433)],
        database: db.into(),
        username: db.into(),
        password: Some(db.into()),
        connect_timeout_ms: 10_000,
        socket_timeout: None,
        load_balance: false,
        tls,
    };
    let (client, info) = ep
        .connect_observed("127.0.0.1", 5433)
        .await
        .unwrap_or_else(|e| panic!("TLS connection to {db}: {e:#}"));
    assert!(info.tls.is_some(), "the connection to {db} is not TLS");
    client
}

async fn table_exists(m: &Material, db: &str, schema: &str, table: &str) -> bool {
    tls_client(m, db)
        .await
        .query_one(
            "SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL",
            &[&schema, &table],
        )
        .await
        .expect("to_regclass")
        .get(0)
}

/// Migrates the type mix into `db` with `tls` settings, then validates it value by value.
async fn migrate_and_validate(m: &Material, db: &str, tls: &str, label: &str) {
    let ks = common::unique_name(&format!("tls_{label}"));
    let schema = common::unique_name("tls");
    common::gen(&ks, "mix", 600, 4, 15);
    let cfg = config(&format!("{ks}-mix"), &ks, "mix", &schema, db, tls);
    let out = run(&["migrate"], &cfg, &["--create-tables"]);
    assert!(out.status.success(), "migrate into {db}: {}", text(&out));
    let out = run(&["validate"], &cfg, &["--full", "--json"]);
    assert!(out.status.success(), "validate over TLS: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("validate --json");
    assert_eq!(v["equal"], true, "{v:#}");
    assert_eq!(v["tables"][0]["source_rows"], 600, "{v:#}");
    assert_eq!(v["tables"][0]["target_rows"], 600, "{v:#}");
    // The rows really are in the TLS-only database, read back over TLS.
    let n: i64 = tls_client(m, db)
        .await
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".mix"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 600);
    let out = run(&["status"], &cfg, &[]);
    assert!(out.status.success(), "status over TLS: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{ks}.mix")),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn the_type_mix_migrates_exactly_into_the_tls_only_database_with_verify_full() {
    let m = material();
    let tls = format!(
        "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}",
        m.ca.display()
    );
    migrate_and_validate(&m, "ferry_tls", &tls, "full").await;
}

#[tokio::test]
async fn the_type_mix_migrates_exactly_with_a_client_certificate_pem_and_pkcs12() {
    let m = material();
    let pem = format!(
        "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}\nyugabyte.sslcert={}\nyugabyte.sslkey={}",
        m.ca.display(),
        m.client_cert.display(),
        m.client_key.display()
    );
    migrate_and_validate(&m, "ferry_mtls", &pem, "pem").await;
    // pgJDBC's spelling: the PKCS#12 key store in sslkey, opened with sslpassword; the JDBC
    // switch `ssl=true` means verify-full.
    let p12 = format!(
        "yugabyte.ssl=true\nyugabyte.sslrootcert={}\nyugabyte.sslkey={}\nyugabyte.sslpassword=changeit",
        m.ca.display(),
        m.client_p12.display()
    );
    migrate_and_validate(&m, "ferry_mtls", &p12, "p12").await;
}

#[tokio::test]
async fn diagnose_reports_protocol_cipher_certificate_and_handshake_cost() {
    let m = material();
    let ks = common::unique_name("tls_diag");
    common::gen(&ks, "mix", 200, 4, 3);
    let tls = format!(
        "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}",
        m.ca.display()
    );
    let cfg = config(
        &format!("{ks}-diag"),
        &ks,
        "mix",
        "public",
        "ferry_tls",
        &tls,
    );
    let args = [
        "--json",
        "--samples",
        "5",
        "--scan-rows",
        "200",
        "--copy-rows",
        "500",
    ];
    let out = run(&["diagnose"], &cfg, &args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diagnose --json ({e}): {}", text(&out)));
    let targets: Vec<&serde_json::Value> = v["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter(|e| e["role"] == "target")
        .collect();
    assert_eq!(targets.len(), 3, "{v:#}");
    for e in targets {
        let t = &e["tls"];
        assert!(
            t["protocol"] == "TLSv1.3" || t["protocol"] == "TLSv1.2",
            "{e:#}"
        );
        assert!(t["cipher"].as_str().unwrap().starts_with("TLS"), "{e:#}");
        assert_eq!(t["subject"], "CN=ferry-testbed-server", "{e:#}");
        assert_eq!(t["issuer"], "CN=ferry-testbed-ca", "{e:#}");
        assert!(t["days_to_expiry"].as_i64().unwrap() > 3000, "{e:#}");
        // SSLRequest + the handshake; its time lies within the login's.
        assert_eq!(t["negotiation_round_trips"], 1, "{e:#}");
        assert!(t["handshake_round_trips"].as_u64().unwrap() >= 1, "{e:#}");
        assert!(
            t["handshake_ms"].as_f64().unwrap() <= e["login_ms"].as_f64().unwrap(),
            "{e:#}"
        );
        let check = e["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tls")
            .expect("tls verdict");
        assert_eq!(check["verdict"], "ok", "{e:#}");
    }
    // The readable report says the same.
    let out = run(&["diagnose"], &cfg, &args[1..]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("tls TLSv1."), "{}", text(&out));
    assert!(
        s.contains("round trips (1 to ask for TLS"),
        "{}",
        text(&out)
    );
}

/// Asserts one of the bad-input outcomes: exit 2, one line on stderr naming the target side and
/// containing every `needle`.
fn assert_refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("ferry: error"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", text(out));
    let other = err
        .lines()
        .filter(|l| !l.starts_with("ferry: note:") && !l.trim().is_empty())
        .count();
    assert_eq!(
        other,
        1,
        "nothing but the error line (and notes): {}",
        text(out)
    );
    for n in needles {
        assert!(lines[0].contains(n), "missing {n:?} in: {}", lines[0]);
    }
}

/// openssl in a shell, in `dir`.
fn openssl(dir: &Path, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("bash")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const CA: &str = "openssl req -x509 -newkey rsa:2048 -noenc -keyout ca.key -out ca.crt -days 30 \
    -subj /CN=ferry-test-other-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null\n";

#[tokio::test]
async fn each_bad_input_is_one_line_exit_2_and_nothing_written() {
    let m = material();
    let ks = common::unique_name("tls_bad");
    common::gen(&ks, "mix", 50, 5, 9);
    let schema = common::unique_name("tlsbad");
    let full = format!(
        "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}",
        m.ca.display()
    );
    let dir = std::env::temp_dir().join(common::unique_name("ferry-tls-bad"));
    // Another CA, and a client certificate for ferry_mtls it signed.
    openssl(
        &dir,
        &format!(
            "{CA}openssl req -new -newkey rsa:2048 -noenc -keyout c.key -out c.csr -subj /CN=ferry_mtls 2>/dev/null\n\
             printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' >c.ext\n\
             openssl x509 -req -in c.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out c.crt -extfile c.ext 2>/dev/null\n"
        ),
    );
    let other_ca = dir.join("ca.crt");
    let migrate = |name: &str, db: &str, tls: &str| {
        let cfg = config(&format!("{ks}-{name}"), &ks, "mix", &schema, db, tls);
        run(&["migrate"], &cfg, &["--create-tables"])
    };

    // A server certificate no CA in sslrootcert signed: named by subject and issuer.
    let out = migrate(
        "untrusted",
        "ferry_tls",
        &format!(
            "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}",
            other_ca.display()
        ),
    );
    assert_refused(
        &out,
        &[
            "target 127.0.0.1:",
            "CN=ferry-testbed-server",
            "CN=ferry-testbed-ca",
            "yugabyte.sslrootcert",
        ],
    );
    // The same CA with `require` checks the chain too (libpq: a root certificate makes
    // require act as verify-ca).
    let out = migrate(
        "require-root",
        "ferry_tls",
        &format!(
            "yugabyte.sslmode=require\nyugabyte.sslrootcert={}",
            other_ca.display()
        ),
    );
    assert_refused(&out, &["is not signed by a CA in yugabyte.sslrootcert"]);

    // TLS off against a database that demands it.
    let out = migrate("disable", "ferry_tls", "yugabyte.sslmode=disable");
    assert_refused(
        &out,
        &[
            "target 127.0.0.1:",
            "the server requires TLS: set yugabyte.sslmode=",
        ],
    );

    // A missing root certificate: stopped before any connection.
    let out = migrate(
        "missing-root",
        "ferry_tls",
        "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert=/nonexistent/root.crt",
    );
    assert_refused(&out, &["/nonexistent/root.crt", "yugabyte.sslrootcert"]);
    // verify-full without any root certificate.
    let out = migrate("no-root", "ferry_tls", "yugabyte.sslmode=verify-full");
    assert_refused(&out, &["yugabyte.sslrootcert is not set"]);

    // Mutual TLS: no client certificate, one from a CA the server does not trust, a key that
    // is not the certificate's, a PKCS#12 password that does not open it.
    let out = migrate("no-client-cert", "ferry_mtls", &full);
    assert_refused(&out, &["target 127.0.0.1:", "yugabyte.sslcert"]);
    let out = migrate(
        "refused-cert",
        "ferry_mtls",
        &format!(
            "{full}\nyugabyte.sslcert={}\nyugabyte.sslkey={}",
            dir.join("c.crt").display(),
            dir.join("c.key").display()
        ),
    );
    assert_refused(
        &out,
        &[
            "target 127.0.0.1:",
            "refused ferry's client certificate",
            "yugabyte.sslcert",
        ],
    );
    let out = migrate(
        "wrong-key",
        "ferry_mtls",
        &format!(
            "{full}\nyugabyte.sslcert={}\nyugabyte.sslkey={}",
            m.client_cert.display(),
            dir.join("c.key").display()
        ),
    );
    assert_refused(&out, &["yugabyte.sslkey"]);
    let out = migrate(
        "wrong-password",
        "ferry_mtls",
        &format!(
            "{full}\nyugabyte.sslkey={}\nyugabyte.sslpassword=not-changeit-s3cret",
            m.client_p12.display()
        ),
    );
    assert_refused(&out, &["yugabyte.sslpassword"]);
    assert!(
        !text(&out).contains("not-changeit-s3cret"),
        "the password must never print: {}",
        text(&out)
    );

    // Nothing was written: neither database holds the table or ferry's progress tables.
    for db in ["ferry_tls", "ferry_mtls"] {
        assert!(
            !table_exists(&m, db, &schema, "mix").await,
            "{db}.{schema}.mix exists"
        );
        assert!(
            !table_exists(&m, db, &schema, "ferry_runs").await,
            "{db}.{schema}.ferry_runs exists"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A toxiproxy endpoint on an address the server certificate does not name.
struct Proxy(String);

impl Proxy {
    fn new(name: &str, listen: &str) -> Self {
        let _ = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "DELETE",
                &format!("http://127.0.0.1:8474/proxies/{name}"),
            ])
            .output();
        let out = Command::new("curl")
            .args(["-fsS", "-X", "POST", "http://127.0.0.1:8474/proxies", "-d"])
            .arg(format!(
                r#"{{"name":"{name}","listen":"{listen}","upstream":"127.0.0.2:5432","enabled":true}}"#
            ))
            .output()
            .expect("curl toxiproxy");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Proxy(name.into())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "DELETE",
                &format!("http://127.0.0.1:8474/proxies/{}", self.0),
            ])
            .output();
    }
}

#[tokio::test]
async fn verify_full_refuses_an_address_the_certificate_does_not_name_and_verify_ca_accepts_it() {
    let m = material();
    // 127.0.0.7 is not among the certificate's names (127.0.0.1-5, .11-13, localhost).
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let listen = format!("127.0.0.7:{port}");
    let _proxy = Proxy::new(&format!("tls_mismatch_{}", std::process::id()), &listen);
    let ks = common::unique_name("tls_name");
    common::gen(&ks, "mix", 50, 5, 4);
    let schema = common::unique_name("tlsname");
    let body = |mode: &str| {
        format!(
            "yugabyte.sslmode={mode}\nyugabyte.sslrootcert={}\nyugabyte.host={listen}\nyugabyte.loadBalanceHosts=false",
            m.ca.display()
        )
    };
    let cfg = config(
        &format!("{ks}-full"),
        &ks,
        "mix",
        &schema,
        "ferry_tls",
        &body("verify-full"),
    );
    let out = run(&["migrate"], &cfg, &["--create-tables"]);
    assert_refused(
        &out,
        &[
            &format!("target {listen}"),
            "is not valid for the address dialled (127.0.0.7",
            "IP:127.0.0.1",
            "verify-ca",
        ],
    );
    assert!(!table_exists(&m, "ferry_tls", &schema, "mix").await);
    // The same endpoint under verify-ca: the chain is checked, the name is not.
    let cfg = config(
        &format!("{ks}-ca"),
        &ks,
        "mix",
        &schema,
        "ferry_tls",
        &body("verify-ca"),
    );
    let out = run(&["migrate"], &cfg, &["--create-tables"]);
    assert!(
        out.status.success(),
        "verify-ca through {listen}: {}",
        text(&out)
    );
    assert!(table_exists(&m, "ferry_tls", &schema, "mix").await);
}

/// A throwaway PostgreSQL 15 on 127.0.0.2 (initdb'd by this test, stopped and removed on drop):
/// the server without TLS, and then the server with an expired certificate, that the shared
/// test bed cannot be.
struct ScratchPg {
    dir: PathBuf,
    port: u16,
}

const PGBIN: &str = "/usr/lib/postgresql/15/bin";

impl ScratchPg {
    fn start() -> Self {
        let dir = PathBuf::from(format!(
            "/var/tmp/{}",
            common::unique_name("ferry-scratch-pg")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.2:0").expect("free port");
            l.local_addr().unwrap().port()
        };
        let sh = |script: &str| {
            let out = Command::new("bash")
                .arg("-ec")
                .arg(script)
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "{script}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let d = dir.display();
        sh(&format!(
            "chown postgres: {d}\n\
             runuser -u postgres -- {PGBIN}/initdb -D {d}/data -U postgres --auth=trust >/dev/null\n\
             cat >>{d}/data/postgresql.conf <<EOF\n\
             listen_addresses = '127.0.0.2'\nport = {port}\nunix_socket_directories = '{d}'\n\
             shared_buffers = 16MB\nmax_connections = 20\nfsync = off\nssl = off\n\
             include_if_exists = 'tls.conf'\nEOF\n\
             runuser -u postgres -- {PGBIN}/pg_ctl -D {d}/data -l {d}/log -w -t 60 start >/dev/null"
        ));
        ScratchPg { dir, port }
    }

    /// Turns TLS on with an already expired server certificate (signed by a fresh CA), by a
    /// reload; returns that CA.
    fn expired_tls(&self) -> PathBuf {
        let t = self.dir.join("tls");
        openssl(
            &t,
            &format!(
                "{CA}openssl req -new -newkey rsa:2048 -noenc -keyout server.key -out server.csr -subj /CN=ferry-test-expired 2>/dev/null\n\
                 printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nnew_certs_dir=.\\nserial=serial\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n[p]\\ncommonName=supplied\\n[x]\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\nsubjectAltName=IP:127.0.0.2\\n' >ca.cnf\n\
                 : >index.txt; echo 01 >serial\n\
                 openssl ca -batch -notext -config ca.cnf -cert ca.crt -keyfile ca.key -in server.csr -out server.crt -startdate 20200101000000Z -enddate 20200201000000Z -extensions x 2>/dev/null\n\
                 chown -R postgres: . && chmod 600 server.key\n\
                 printf \"ssl = on\\nssl_cert_file = '{t}/server.crt'\\nssl_key_file = '{t}/server.key'\\n\" >{d}/data/tls.conf\n\
                 runuser -u postgres -- {PGBIN}/pg_ctl -D {d}/data reload >/dev/null\n\
                 for i in $(seq 50); do runuser -u postgres -- psql -X -h {d} -p {p} -U postgres -tAc 'show ssl' | grep -q on && exit 0; sleep 0.1; done; exit 1",
                t = t.display(),
                d = self.dir.display(),
                p = self.port,
            ),
        );
        t.join("ca.crt")
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PGBIN}/pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_server_without_tls_and_then_an_expired_certificate_are_refused_by_name() {
    common::testbed();
    let pg = ScratchPg::start();
    let ks = common::unique_name("tls_scratch");
    common::gen(&ks, "mix", 50, 5, 5);
    let cfg = |name: &str, tls: &str| {
        common::write_config(
            &format!("{ks}-{name}"),
            &format!(
                "cassandra.host=127.0.0.1\ncassandra.port=9042\ncassandra.localDC=datacenter1\n\
                 cassandra.username=cassandra\nyugabyte.host=127.0.0.2:{}\nyugabyte.database=postgres\n\
                 yugabyte.username=postgres\ntable.source.keyspace={ks}\ntable.source.table=mix\n\
                 table.target.schema=public\ntable.target.table=mix\nferry.runsDir={}\n{tls}\n",
                pg.port,
                std::env::temp_dir().join("ferry-tests/tls-runs").display()
            ),
        )
    };
    let exists = || {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-h"])
            .arg(&pg.dir)
            .args(["-p", &pg.port.to_string(), "-U", "postgres", "-tAc"])
            .arg("select count(*) from pg_class where relname in ('mix', 'ferry_runs')")
            .output()
            .expect("psql");
        String::from_utf8_lossy(&out.stdout).trim() != "0"
    };

    // TLS demanded of a server that has none: it answers the SSLRequest with 'N'.
    let out = run(
        &["migrate"],
        &cfg("nossl", "yugabyte.sslmode=require"),
        &["--create-tables"],
    );
    assert_refused(
        &out,
        &[
            &format!("target 127.0.0.2:{}", pg.port),
            "does not offer TLS",
            "yugabyte.sslmode=prefer",
        ],
    );
    assert!(!exists(), "nothing may be written");
    // prefer falls back to clear text there, as libpq does (status only reads).
    let out = run(&["status"], &cfg("prefer", "yugabyte.sslmode=prefer"), &[]);
    assert!(
        out.status.success(),
        "prefer against a server without TLS: {}",
        text(&out)
    );

    // The same server with an expired certificate.
    let ca = pg.expired_tls();
    let out = run(
        &["migrate"],
        &cfg(
            "expired",
            &format!(
                "yugabyte.sslmode=verify-full\nyugabyte.sslrootcert={}",
                ca.display()
            ),
        ),
        &["--create-tables"],
    );
    assert_refused(
        &out,
        &[
            &format!("target 127.0.0.2:{}", pg.port),
            "CN=ferry-test-expired",
            "expired on 2020-02-01",
            "renew the server's certificate",
        ],
    );
    assert!(!exists(), "nothing may be written");
}
