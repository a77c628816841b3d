"""The Spark baseline for the migration benchmark (issue 6): Cassandra -> PostgreSQL/YugabyteDB, as the seed does it.

Reads a Cassandra table through spark-cassandra-connector 3.5.1 (DataFrame API, org.apache.spark.sql.cassandra)
with the seed's read settings, and writes each Spark partition with COPY ... FROM STDIN (FORMAT csv) from the JVM
(ferry.bench.CopyWriter in bench/spark/java, compiled by bench/spark/setup): one connection per partition, a commit
every --flush-every rows (the seed's yugabyte.copyFlushEvery=50000), partitions spread over the --hosts list.
The target table must exist; this job only loads rows.

Run it with bench/spark/run (spark-submit, local[2]). Prints, last:
    SPARK_STARTUP seconds=S            JVM + SparkSession + table metadata, before the job
    SPARK_RESULT rows=N seconds=S rows_per_sec=R   wall time of the read+write job only
"""

import argparse
import os
import sys
import time

T_PY = time.time()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keyspace", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--target-schema", default="public")
    p.add_argument("--target-table", help="default: --table")
    p.add_argument("--hosts", default="127.0.0.1:5433", help="target host:port list, comma separated")
    p.add_argument("--database", default="ferry")
    p.add_argument("--user", default="postgres")
    p.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    p.add_argument("--cassandra-host", default="127.0.0.1", help="contact point(s), comma separated")
    p.add_argument("--cassandra-port", default="9042")
    p.add_argument("--cassandra-user", default="cassandra")
    p.add_argument("--cassandra-password", default="cassandra")
    p.add_argument("--local-dc", default="datacenter1")
    # The seed's settings (migration.properties); change them only to experiment.
    p.add_argument("--fetch-size", type=int, default=10000, help="cassandra.fetchSizeInRows")
    p.add_argument("--split-size-mb", type=int, default=256, help="cassandra.inputSplitSizeMb")
    p.add_argument("--consistency", default="LOCAL_ONE", help="cassandra.consistencyLevel")
    p.add_argument("--concurrent-reads", type=int, default=2048, help="cassandra.concurrentReads")
    p.add_argument("--flush-every", type=int, default=50000, help="yugabyte.copyFlushEvery: rows per COPY + commit")
    p.add_argument("--buffer-chars", type=int, default=100000, help="yugabyte.copyBufferSize: CSV chars per write")
    p.add_argument("--parallelism", type=int, default=0,
                   help="spark.default.parallelism (0: Spark's default, the local[N] core count)")
    p.add_argument("--truncate", action="store_true", help="TRUNCATE the target first (the seed's default)")
    return p.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    from pyspark.sql import SparkSession

    b = (SparkSession.builder.appName("ferry-bench-spark-c2p-copy")
         .config("spark.cassandra.connection.host", a.cassandra_host)
         .config("spark.cassandra.connection.port", a.cassandra_port)
         .config("spark.cassandra.connection.localDC", a.local_dc)
         .config("spark.cassandra.auth.username", a.cassandra_user)
         .config("spark.cassandra.auth.password", a.cassandra_password)
         # cassandra.* read settings of the seed
         .config("spark.cassandra.input.fetch.sizeInRows", str(a.fetch_size))
         .config("spark.cassandra.input.split.sizeInMB", str(a.split_size_mb))
         .config("spark.cassandra.input.consistency.level", a.consistency)
         .config("spark.cassandra.concurrent.reads", str(a.concurrent_reads))
         .config("spark.cassandra.read.timeoutMS", "120000")
         .config("spark.cassandra.query.retry.count", "3")
         .config("spark.cassandra.connection.timeoutMS", "60000")
         .config("spark.cassandra.connection.keepAliveMS", "30000")
         .config("spark.cassandra.connection.localConnectionsPerExecutor", "4")
         .config("spark.cassandra.connection.remoteConnectionsPerExecutor", "1")
         .config("spark.cassandra.connection.reconnectionDelayMS.min", "1000")
         .config("spark.cassandra.connection.reconnectionDelayMS.max", "60000")
         # spark.* settings of the seed that mean something in local mode
         .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
         .config("spark.locality.wait", "0s")
         .config("spark.network.timeout", "800s")
         .config("spark.memory.fraction", "0.8")
         .config("spark.memory.storageFraction", "0.2")
         .config("spark.sql.adaptive.enabled", "true")
         # Rows hold java.time.Instant/LocalDate: no Julian-calendar rebasing of old dates on the way out.
         .config("spark.sql.datetime.java8API.enabled", "true")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false"))
    if a.parallelism > 0:
        b = b.config("spark.default.parallelism", str(a.parallelism))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    df = (spark.read.format("org.apache.spark.sql.cassandra")
          .options(keyspace=a.keyspace, table=a.table).load())
    df.schema  # table metadata is read here, still startup
    jvm = spark.sparkContext._jvm

    t0 = time.time()
    t_start = float(os.environ.get("FERRY_BENCH_T0", T_PY))
    startup = t0 - t_start
    print(f"SPARK_STARTUP seconds={startup:.2f} (python_after_launch={T_PY - t_start:.2f})", flush=True)

    rows, csv_bytes, parts = jvm.ferry.bench.CopyWriter.run(
        spark._jsparkSession, df._jdf, a.keyspace, a.table, a.hosts, a.database, a.user, a.password,
        a.target_schema, a.target_table or a.table, a.flush_every, a.buffer_chars, a.truncate)
    secs = time.time() - t0
    spark.stop()
    print(f"SPARK_DETAIL partitions={parts} csv_bytes={csv_bytes} csv_mb_per_sec={csv_bytes / 1e6 / secs:.2f} "
          f"startup_seconds={startup:.2f}", flush=True)
    print(f"SPARK_RESULT rows={rows} seconds={secs:.3f} rows_per_sec={rows / secs:.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
