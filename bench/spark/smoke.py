"""Data half of bench/spark/smoke (run with the spark venv's python).

    smoke.py load   --rows N   create spark_smoke.mixed in Cassandra and in PostgreSQL (empty), write N rows to Cassandra
    smoke.py verify --rows N   compare every PostgreSQL row with the generated values; exit 1 on any mismatch

Rows are a pure function of their id, so `verify` regenerates what `load` wrote.
"""

import argparse
import datetime as dt
import ipaddress
import json
import math
import os
import random
import struct
import sys
import uuid
from decimal import Decimal

KS = "spark_smoke"
TABLE = "mixed"
UTC = dt.timezone.utc

CQL_DDL = f"""CREATE TABLE {KS}.{TABLE} (
  id int PRIMARY KEY, big bigint, name text, score double, flag boolean, ts timestamp, uid uuid,
  nums list<int>, attrs map<text, int>,
  b blob, d decimal, vi varint, ip inet, tm time, dt date, f float, tags set<text>, tup tuple<int, text>)"""

PG_DDL = f"""CREATE TABLE {KS}.{TABLE} (
  id integer PRIMARY KEY, big bigint, name text, score double precision, flag boolean, ts timestamptz, uid uuid,
  nums integer[], attrs jsonb,
  b bytea, d numeric, vi numeric, ip inet, tm time, dt date, f real, tags text[], tup jsonb)"""

COLS = ["id", "big", "name", "score", "flag", "ts", "uid", "nums", "attrs", "b", "d", "vi", "ip", "tm", "dt", "f",
        "tags", "tup"]

NAMES = ["", "plain", 'comma, "quote"\nand newline', "ünïcødé ✓", "back\\slash", "{braces}", "NULL", "\\."]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def gen(i):
    """One row as Python values (None = null), as Cassandra stores them."""
    r = random.Random(i * 7919 + 13)
    k = i % 50
    score = math.nan if k == 0 else math.inf if k == 1 else -math.inf if k == 2 else -0.0 if k == 3 \
        else r.uniform(-1e9, 1e9)
    nums = [r.randint(-2**31, 2**31 - 1) for _ in range(r.randint(0, 5))]
    nums = nums or None                                   # Cassandra stores an empty collection as null
    attrs = {r.choice(["k", 'q"uote', "ü", "a,b"]) + str(j): r.randint(-1000, 1000) for j in range(r.randint(0, 3))}
    tags = {r.choice(NAMES[1:]) + str(j) for j in range(r.randint(0, 3))}
    ms = r.randint(-2_000_000_000_000, 4_000_000_000_000)
    return {
        "id": i,
        "big": None if i % 11 == 0 else r.randint(-2**63, 2**63 - 1),
        "name": None if i % 13 == 0 else (NAMES[(i // 2) % len(NAMES)] if i % 2 else f"name-{i}-{r.random()}"),
        "score": score,
        "flag": None if i % 7 == 0 else bool(i % 3),
        "ts": dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms),
        "uid": uuid.UUID(int=r.getrandbits(128)),
        "nums": nums,
        "attrs": attrs or None,
        "b": bytes(r.getrandbits(8) for _ in range(r.randint(0, 12))),
        "d": Decimal(r.randint(-10**14, 10**14)).scaleb(-r.randint(0, 6)),
        "vi": r.randint(-10**30, 10**30),
        "ip": str(ipaddress.ip_address(r.getrandbits(32))) if i % 2 else str(ipaddress.ip_address(r.getrandbits(128))),
        "tm": dt.time(r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.randint(0, 999999)),
        "dt": dt.date(1, 1, 1) + dt.timedelta(days=r.randint(0, 3_600_000)),
        "f": f32(r.uniform(-1e6, 1e6)) if k != 4 else math.nan,
        "tags": tags or None,
        "tup": (r.randint(-100, 100), r.choice(NAMES)),
    }


def cassandra_session():
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
    from cassandra.policies import DCAwareRoundRobinPolicy
    prof = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=os.environ.get("CASS_DC", "datacenter1")),
                            request_timeout=60)
    cl = Cluster([os.environ.get("CASS_HOST", "127.0.0.1")], port=int(os.environ.get("CASS_PORT", "9042")),
                 auth_provider=PlainTextAuthProvider(os.environ.get("CASS_USER", "cassandra"),
                                                     os.environ.get("CASS_PASSWORD", "cassandra")),
                 execution_profiles={EXEC_PROFILE_DEFAULT: prof})
    return cl, cl.connect()


def pg():
    import psycopg
    return psycopg.connect(os.environ.get("PG_DSN", "host=127.0.0.1 port=5433 dbname=ferry user=postgres"),
                           autocommit=True)


def load(n):
    from cassandra.concurrent import execute_concurrent_with_args
    cl, s = cassandra_session()
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    s.execute(f"DROP TABLE IF EXISTS {KS}.{TABLE}", timeout=120)
    s.execute(CQL_DDL, timeout=120)
    ins = s.prepare(f"INSERT INTO {KS}.{TABLE} ({', '.join(COLS)}) VALUES ({', '.join('?' * len(COLS))})")
    args = [tuple(row[c] for c in COLS) for row in map(gen, range(n))]
    for ok, res in execute_concurrent_with_args(s, ins, args, concurrency=64, raise_on_first_error=True):
        pass
    got = s.execute(f"SELECT count(*) FROM {KS}.{TABLE}", timeout=120).one()[0]
    cl.shutdown()
    if got != n:
        sys.exit(f"smoke: Cassandra holds {got} rows, wrote {n}")
    with pg() as c:
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {KS}")
        c.execute(f"DROP TABLE IF EXISTS {KS}.{TABLE}")
        c.execute(PG_DDL)
    print(f"smoke: {n} rows in Cassandra {KS}.{TABLE}; empty PostgreSQL {KS}.{TABLE} created")


def same(col, want, got):
    if want is None or got is None:
        return want is None and got is None
    if col == "f":
        got = f32(got)                                    # real comes back as its shortest decimal text
    if col in ("score", "f"):
        return (math.isnan(want) and math.isnan(got)) or (want == got and math.copysign(1, want) == math.copysign(1, got))
    if col == "tags":
        return sorted(want) == sorted(got)
    if col == "tup":
        return list(want) == got
    if col == "ip":
        return ipaddress.ip_address(want) == ipaddress.ip_interface(str(got)).ip
    if col == "uid":
        return want == got
    if col == "vi":
        return Decimal(want) == got
    return want == got


def verify(n):
    bad = 0
    with pg() as c:
        c.execute("SET TIME ZONE 'UTC'")
        rows = c.execute(f"SELECT {', '.join(COLS)} FROM {KS}.{TABLE} ORDER BY id").fetchall()
    if len(rows) != n:
        print(f"smoke: MISMATCH: PostgreSQL holds {len(rows)} rows, expected {n}")
        bad += 1
    seen = set()
    for row in rows:
        got = dict(zip(COLS, row))
        i = got["id"]
        seen.add(i)
        want = gen(i)
        for col in COLS:
            g = got[col]
            if col == "b" and g is not None:
                g = bytes(g)
            if not same(col, want[col], g):
                bad += 1
                if bad <= 20:
                    print(f"smoke: MISMATCH id={i} {col}: want {want[col]!r} got {g!r}")
    missing = set(range(n)) - seen
    if missing:
        print(f"smoke: MISMATCH: {len(missing)} ids missing, e.g. {sorted(missing)[:5]}")
        bad += 1
    if bad:
        print(f"smoke: FAILED, {bad} mismatches")
        sys.exit(1)
    print(f"smoke: all {n} rows x {len(COLS)} columns match")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["load", "verify"])
    p.add_argument("--rows", type=int, default=5000)
    a = p.parse_args()
    (load if a.cmd == "load" else verify)(a.rows)
