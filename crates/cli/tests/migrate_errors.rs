//! Bad input gets a clear error naming the problem and the fix, a non-zero exit code, secrets
//! never appear, and nothing is written to the target. Also: the seed system's own properties
//! file runs as it is, with only hosts, credentials and table names overridden.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

/// One small source table shared by the tests of this file.
fn source() -> &'static str {
    static KS: OnceLock<String> = OnceLock::new();
    KS.get_or_init(|| {
        common::testbed();
        let ks = common::unique_name("err");
        common::gen(&ks, "t", 500, 2, 5);
        ks
    })
}

fn migrate(cfg: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::ferry();
    cmd.args(["migrate", "-c"])
        .arg(cfg)
        .arg("--create-tables")
        .args(extra);
    cmd.env("FERRY_CASSANDRA_PASSWORD", "cassandra");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ferry")
}

/// Asserts failure with an error line containing every `needles`, and returns stderr.
fn assert_fails(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got success:\n{stderr}"
    );
    let error: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ferry: error:"))
        .collect();
    assert!(!error.is_empty(), "no error line in:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error lacks '{n}':\n{stderr}");
    }
    stderr
}

async fn assert_nothing_written(schema: &str) {
    let pg = common::pg_connect(5433).await;
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .expect("count tables")
        .get(0);
    assert_eq!(n, 0, "something was created in {schema}");
}

fn setup(name: &str) -> (String, std::path::PathBuf) {
    let ks = source();
    let schema = common::unique_name(name);
    let cfg = common::write_config(&schema, &common::testbed_properties(ks, "t", &schema));
    (schema, cfg)
}

#[tokio::test]
async fn unknown_key_names_the_closest_known_key() {
    let (schema, _) = setup("e_unknown");
    let body =
        common::testbed_properties(source(), "t", &schema) + "cassandra.fetchSizeInRow=100\n";
    let cfg = common::write_config(&format!("{schema}_x"), &body);
    let out = migrate(&cfg, &[], &[]);
    assert_fails(
        &out,
        &[
            "cassandra.fetchSizeInRow",
            "did you mean",
            "cassandra.fetchSizeInRows",
        ],
    );
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn wrong_type_value_names_key_and_fix() {
    let (schema, cfg) = setup("e_type");
    let out = migrate(&cfg, &["--set", "cassandra.fetchSizeInRows=abc"], &[]);
    assert_fails(&out, &["cassandra.fetchSizeInRows", "abc"]);
    let out = migrate(&cfg, &["--set", "yugabyte.loadBalanceHosts=maybe"], &[]);
    assert_fails(&out, &["yugabyte.loadBalanceHosts", "true"]);
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn unreachable_cassandra() {
    let (schema, cfg) = setup("e_cass");
    let out = migrate(&cfg, &["--set", "cassandra.port=9"], &[]);
    assert_fails(&out, &["Cassandra", "127.0.0.1:9", "cassandra.port"]);
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn unreachable_target() {
    let (schema, cfg) = setup("e_target");
    let out = migrate(&cfg, &["--set", "yugabyte.host=127.0.0.1:9"], &[]);
    assert_fails(&out, &["127.0.0.1:9", "yugabyte.host"]);
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn bad_credentials_on_either_side_say_which_side_refused() {
    let (schema, cfg) = setup("e_cred");
    let out = migrate(&cfg, &[], &[("FERRY_CASSANDRA_PASSWORD", "s3cr3t-wrong-c")]);
    let err = assert_fails(&out, &["Cassandra", "refused the credentials"]);
    assert!(!err.contains("s3cr3t"), "the password leaked: {err}");
    let out = migrate(
        &cfg,
        &["--set", "yugabyte.username=yugabyte"],
        &[("FERRY_YUGABYTE_PASSWORD", "s3cr3t-wrong-y")],
    );
    let err = assert_fails(&out, &["target", "refused", "yugabyte"]);
    assert!(!err.contains("s3cr3t"), "the password leaked: {err}");
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn missing_keyspace_or_table() {
    let (schema, cfg) = setup("e_missing");
    let out = migrate(&cfg, &["--set", "table.source.keyspace=no_such_ks"], &[]);
    assert_fails(
        &out,
        &[
            "keyspace 'no_such_ks' does not exist",
            "table.source.keyspace",
        ],
    );
    let out = migrate(&cfg, &["--set", "table.source.table=no_such_table"], &[]);
    assert_fails(
        &out,
        &["no_such_table' does not exist", "table.source.table"],
    );
    assert_nothing_written(&schema).await;
}

#[tokio::test]
async fn incompatible_existing_target_lists_every_mismatch() {
    let (schema, cfg) = setup("e_incompat");
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (pk bigint, ck text, c_int bigint, PRIMARY KEY (pk, ck))"
    ))
    .await
    .expect("create");
    let out = migrate(&cfg, &[], &[]);
    assert_fails(
        &out,
        &[
            "column ck is text but ck int needs integer",
            "column c_int is bigint",
            "column c_text",
            "is missing",
        ],
    );
    let n: i64 = pg
        .query_one(&format!("SELECT count(*) FROM {schema}.t"), &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_seed_properties_file_runs_as_it_is() {
    let ks = source();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrate/tests/data/seed-migration.properties");
    let table = common::unique_name("seed_t");
    let hosts = "127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435";
    let out = common::ferry()
        .args(["migrate", "-c"])
        .arg(&seed)
        .arg("--create-tables")
        .args([
            "--set",
            "cassandra.host=127.0.0.1",
            "--set",
            "cassandra.port=9042",
        ])
        .args(["--set", &format!("yugabyte.host={hosts}")])
        .args(["--set", "cassandra.username=cassandra"])
        .args([
            "--set",
            &format!("table.source.keyspace={ks}"),
            "--set",
            "table.source.table=t",
        ])
        .args(["--set", &format!("table.target.table={table}")])
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the seed file failed:\n{stderr}");
    // Keys that do not apply are reported, not ignored.
    assert!(
        stderr.contains("spark.serializer"),
        "no notice for spark.serializer:\n{stderr}"
    );
    // Its YugabyteDB-only write option is noted on PostgreSQL; copyReplace=true upserts.
    assert!(
        stderr.contains("yugabyte.disableTransactionalWrites=true is YugabyteDB-only"),
        "no note for yugabyte.disableTransactionalWrites:\n{stderr}"
    );
    // The seed's database, role and password (yugabyte/yugabyte), and its constant columns.
    let pg = tokio_postgres::connect(
        "host=127.0.0.1 port=5433 user=yugabyte password=yugabyte dbname=transaction_datastore",
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect as the seed's role");
    tokio::spawn(pg.1);
    let row = pg
        .0
        .query_one(
            &format!("SELECT count(*), count(DISTINCT created_by), min(created_by), count(migration_ts) FROM public.{table}"),
            &[],
        )
        .await
        .expect("count");
    assert_eq!(row.get::<_, i64>(0), 500);
    assert_eq!(row.get::<_, i64>(1), 1);
    assert_eq!(row.get::<_, String>(2), "CDM_MIGRATION");
    assert_eq!(row.get::<_, i64>(3), 500);
}

/// Issue 16's bad input: each is one error line, exit 2, and nothing written.
#[tokio::test]
async fn since_in_the_future_unparsable_or_without_a_pass_is_refused() {
    let (schema, cfg) = setup("e_since");
    let out = migrate(&cfg, &["--since", "2999-01-01T00:00:00Z"], &[]);
    assert_fails(&out, &["--since", "in the future"]);
    assert_eq!(out.status.code(), Some(2));
    let out = migrate(&cfg, &["--since", "yesterday"], &[]);
    assert_fails(&out, &["--since 'yesterday' is not a time", "RFC 3339"]);
    assert_eq!(out.status.code(), Some(2));
    let out = migrate(&cfg, &["--since", "last"], &[]);
    assert_fails(&out, &["--since last", "no completed pass"]);
    assert_eq!(out.status.code(), Some(2));
    assert_nothing_written(&schema).await;
}

/// A table made by a first run, then changed by hand with `alter` (`{t}` names it); returns its
/// rows' digest.
async fn migrated_then_altered(schema: &str, cfg: &Path, alter: &str) -> (i64, String) {
    let out = migrate(cfg, &[], &[]);
    assert!(
        out.status.success(),
        "first run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pg = common::pg_connect(5433).await;
    pg.batch_execute(&alter.replace("{t}", &format!("{schema}.t")))
        .await
        .expect("alter the target");
    common::table_digest(schema, "t").await
}

#[tokio::test]
async fn a_write_time_column_of_another_type_is_refused() {
    let (schema, cfg) = setup("e_wt_type");
    let before = migrated_then_altered(
        &schema,
        &cfg,
        "ALTER TABLE {t} ADD COLUMN written_at bigint",
    )
    .await;
    let out = migrate(
        &cfg,
        &[
            "--fresh",
            "--truncate",
            "--set",
            "ferry.writetimeColumn=written_at",
        ],
        &[],
    );
    assert_fails(
        &out,
        &["column written_at is bigint", "timestamp with time zone"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(common::table_digest(&schema, "t").await, before);
}

#[tokio::test]
async fn upserts_into_a_target_keyed_otherwise_are_refused() {
    let (schema, cfg) = setup("e_upsert_pk");
    // Keyed on the partition key alone: an upsert by (pk, ck) cannot name its conflict.
    let before = migrated_then_altered(
        &schema,
        &cfg,
        "DELETE FROM {t} WHERE ck <> (SELECT min(ck) FROM {t}); \
         ALTER TABLE {t} DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (pk)",
    )
    .await;
    let out = migrate(&cfg, &["--set", "yugabyte.copyReplace=true"], &[]);
    assert_fails(
        &out,
        &["upserts replace rows", "primary key (pk, ck)", "(pk)"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = migrate(&cfg, &["--since", "2020-01-01T00:00:00Z"], &[]);
    assert_fails(&out, &["primary key (pk, ck)"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(common::table_digest(&schema, "t").await, before);
}

#[tokio::test]
async fn repair_of_a_target_without_a_primary_key_is_refused() {
    let (schema, cfg) = setup("e_repair_pk");
    let before = migrated_then_altered(
        &schema,
        &cfg,
        "ALTER TABLE {t} DROP CONSTRAINT t_pkey; DELETE FROM {t} WHERE pk = 1",
    )
    .await;
    let out = common::ferry()
        .args(["validate", "-c"])
        .arg(&cfg)
        .arg("--repair")
        .env("FERRY_CASSANDRA_PASSWORD", "cassandra")
        .output()
        .expect("run ferry");
    assert_fails(&out, &["--repair", "has none", "primary key"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(common::table_digest(&schema, "t").await, before);
}
