package ferry.bench;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Properties;

import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.ForeachPartitionFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.LongAccumulator;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;
import org.postgresql.copy.CopyManager;

/**
 * The write half of the Spark baseline (bench/spark/c2p_copy.py drives it through py4j): every Spark partition
 * opens one JDBC connection and streams its rows with {@code COPY ... FROM STDIN (FORMAT csv)}, committing every
 * {@code flushEvery} rows, as the seed's JVM job does (yugabyte.copyFlushEvery=50000, copyBufferSize=100000,
 * csvNull empty, quote and escape '"', autoCommit=false, one connection per partition, no pool).
 *
 * <p>Values are converted generically from the Spark SQL types the Cassandra connector produces to PostgreSQL's
 * text form; the target column's type only decides the cases the Spark type cannot (CQL time arrives as a
 * bigint of nanoseconds; list/set go to an array column unless the target is jsonb).
 */
public final class CopyWriter {
  static final int PLAIN = 0, TIME = 1, JSON = 2, INTERVAL = 3;

  private CopyWriter() {}

  /** Returns {rows, csvBytes, partitions}. */
  public static long[] run(SparkSession spark, Dataset<Row> df, String keyspace, String cqlTable, String hosts,
      String database, String user, String password, String schema, String table, int flushEvery, int bufferChars,
      boolean truncate) throws SQLException {
    String[] hostList = hosts.split(",");
    Properties props = connProps(user, password);
    String[] srcCols = df.columns();
    StructType st = df.schema();
    DataType[] types = new DataType[srcCols.length];
    int[] kinds = new int[srcCols.length];
    List<String> tgtNames = new ArrayList<>();
    try (Connection c = connect(hostList, 0, database, props)) {
      List<String[]> tcols = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement(
          "select a.attname, t.typname, t.typcategory, coalesce(e.typname, '') from pg_attribute a"
              + " join pg_class r on r.oid = a.attrelid join pg_namespace n on n.oid = r.relnamespace"
              + " join pg_type t on t.oid = a.atttypid left join pg_type e on e.oid = t.typelem and t.typcategory = 'A'"
              + " where n.nspname = ? and r.relname = ? and a.attnum > 0 and not a.attisdropped order by a.attnum")) {
        ps.setString(1, schema);
        ps.setString(2, table);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) tcols.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4)});
        }
      }
      if (tcols.isEmpty()) throw new SQLException("target table " + schema + "." + table + " does not exist (ferry creates it)");
      for (int i = 0; i < srcCols.length; i++) {
        String[] m = null;
        for (String[] t : tcols) if (t[0].equals(srcCols[i])) m = t;
        if (m == null) for (String[] t : tcols) if (t[0].equalsIgnoreCase(srcCols[i])) m = t;
        if (m == null) throw new SQLException("source column " + srcCols[i] + " has no column in " + schema + "." + table);
        tgtNames.add(m[0]);
        types[i] = st.fields()[i].dataType();
        String tt = m[3].isEmpty() ? m[1] : m[3];             // element type for arrays
        kinds[i] = (m[1].equals("jsonb") || m[1].equals("json")) ? JSON : tt.equals("time") ? TIME
            : tt.equals("interval") ? INTERVAL : PLAIN;
      }
      if (truncate) {
        try (Statement s = c.createStatement()) { s.execute("TRUNCATE " + ident(schema) + "." + ident(table)); }
      }
    }
    StringBuilder sql = new StringBuilder("COPY ").append(ident(schema)).append('.').append(ident(table)).append(" (");
    for (int i = 0; i < tgtNames.size(); i++) sql.append(i > 0 ? ", " : "").append(ident(tgtNames.get(i)));
    sql.append(") FROM STDIN WITH (FORMAT csv, DELIMITER ',', NULL '', QUOTE '\"', ESCAPE '\"')");

    LongAccumulator rows = spark.sparkContext().longAccumulator("ferry.rows");
    LongAccumulator bytes = spark.sparkContext().longAccumulator("ferry.csvBytes");
    LongAccumulator parts = spark.sparkContext().longAccumulator("ferry.partitions");
    df.foreachPartition(new PartitionCopy(hostList, database, props, sql.toString(), types, kinds, flushEvery,
        bufferChars, rows, bytes, parts));
    return new long[] {rows.value(), bytes.value(), parts.value()};
  }

  static Properties connProps(String user, String password) {
    Properties p = new Properties();
    p.setProperty("user", user);
    if (password != null && !password.isEmpty()) p.setProperty("password", password);
    // The seed's JDBC parameters (yugabyte.* in its migration.properties) that pgjdbc knows.
    p.setProperty("tcpKeepAlive", "true");
    p.setProperty("binaryTransfer", "false");
    p.setProperty("socketTimeout", "0");
    p.setProperty("loginTimeout", "10");
    p.setProperty("connectTimeout", "30");
    p.setProperty("ApplicationName", "ferry-bench-spark");
    return p;
  }

  /**
   * Partition i connects to host i mod n first; the others follow in the URL as failover, which is what the
   * seed's multi-host URL (yugabyte.host=a,b,c with loadBalanceHosts=true) gives, minus the randomness.
   */
  static Connection connect(String[] hosts, int first, String database, Properties props) throws SQLException {
    StringBuilder url = new StringBuilder("jdbc:postgresql://");
    for (int k = 0; k < hosts.length; k++) url.append(k > 0 ? "," : "").append(hosts[(first + k) % hosts.length].trim());
    url.append('/').append(database);
    Connection c = new org.postgresql.Driver().connect(url.toString(), props);
    if (c == null) throw new SQLException("pgjdbc refused URL " + url);
    return c;
  }

  static String ident(String s) { return "\"" + s.replace("\"", "\"\"") + "\""; }

  static final class PartitionCopy implements ForeachPartitionFunction<Row> {
    private static final long serialVersionUID = 1L;
    final String[] hosts; final String database; final Properties props; final String sql;
    final DataType[] types; final int[] kinds; final int flushEvery; final int bufferChars;
    final LongAccumulator rows, bytes, parts;

    PartitionCopy(String[] hosts, String database, Properties props, String sql, DataType[] types, int[] kinds,
        int flushEvery, int bufferChars, LongAccumulator rows, LongAccumulator bytes, LongAccumulator parts) {
      this.hosts = hosts; this.database = database; this.props = props; this.sql = sql; this.types = types;
      this.kinds = kinds; this.flushEvery = flushEvery; this.bufferChars = bufferChars; this.rows = rows;
      this.bytes = bytes; this.parts = parts;
    }

    @Override
    public void call(Iterator<Row> it) throws Exception {
      int pid = TaskContext.getPartitionId();
      Encoder enc = new Encoder(types, kinds);
      StringBuilder sb = new StringBuilder(bufferChars + 8192);
      long n = 0, nbytes = 0;
      try (Connection c = connect(hosts, pid, database, props)) {
        c.setAutoCommit(false);
        c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
        CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
        CopyIn in = null;
        long inChunk = 0;
        try {
          while (it.hasNext()) {
            Row r = it.next();
            if (in == null) in = cm.copyIn(sql);
            enc.row(r, sb);
            n++;
            if (sb.length() >= bufferChars) nbytes += send(in, sb);
            if (++inChunk >= flushEvery) {
              nbytes += send(in, sb);
              in.endCopy();
              c.commit();
              in = null;
              inChunk = 0;
            }
          }
          if (in != null) {
            nbytes += send(in, sb);
            in.endCopy();
            c.commit();
            in = null;
          }
        } catch (Exception e) {
          if (in != null && in.isActive()) { try { in.cancelCopy(); } catch (SQLException ignored) { } }
          try { c.rollback(); } catch (SQLException ignored) { }
          throw e;
        }
      }
      rows.add(n);
      bytes.add(nbytes);
      parts.add(1);
    }

    private static long send(CopyIn in, StringBuilder sb) throws SQLException {
      if (sb.length() == 0) return 0;
      byte[] b = sb.toString().getBytes(StandardCharsets.UTF_8);
      in.writeToCopy(b, 0, b.length);
      sb.setLength(0);
      return b.length;
    }
  }

  /** Spark SQL values (as the Cassandra connector types them) to PostgreSQL CSV fields. */
  static final class Encoder {
    final DataType[] types; final int[] kinds;
    final StringBuilder tmp = new StringBuilder(256);
    static final char[] HEX = "0123456789abcdef".toCharArray();

    Encoder(DataType[] types, int[] kinds) { this.types = types; this.kinds = kinds; }

    void row(Row r, StringBuilder out) {
      for (int i = 0; i < types.length; i++) {
        if (i > 0) out.append(',');
        if (r.isNullAt(i)) continue;                     // NULL '' : an unquoted empty field
        Object v = r.get(i);
        // The connector hands a null collection over as an empty one, frozen or not (a non-frozen CQL
        // collection cannot even be empty): write NULL. Only a frozen collection stored empty loses here.
        if (isEmptyCollection(v, types[i])) continue;
        tmp.setLength(0);
        value(v, types[i], kinds[i], tmp);
        csv(tmp, out);
      }
      out.append('\n');
    }

    static boolean isEmptyCollection(Object v, DataType t) {
      if (t instanceof ArrayType) return !iter(v).hasNext();
      if (t instanceof MapType) return ((scala.collection.Map<?, ?>) v).isEmpty();
      return false;
    }

    static void csv(CharSequence v, StringBuilder out) {
      boolean quote = v.length() == 0;                   // an empty string must not read as NULL
      for (int k = 0; k < v.length() && !quote; k++) {
        char ch = v.charAt(k);
        quote = ch == ',' || ch == '"' || ch == '\n' || ch == '\r' || ch == '\\';
      }
      if (!quote) { out.append(v); return; }
      out.append('"');
      for (int k = 0; k < v.length(); k++) {
        char ch = v.charAt(k);
        if (ch == '"') out.append('"');
        out.append(ch);
      }
      out.append('"');
    }

    static void value(Object v, DataType t, int kind, StringBuilder sb) {
      if (kind == JSON || t instanceof MapType || t instanceof StructType) { json(v, t, sb); return; }
      if (t instanceof ArrayType) {
        DataType et = ((ArrayType) t).elementType();
        if (et instanceof ArrayType || et instanceof MapType || et instanceof StructType) { json(v, t, sb); return; }
        sb.append('{');
        Iterator<Object> it = iter(v);
        boolean first = true;
        StringBuilder e = new StringBuilder();
        while (it.hasNext()) {
          Object x = it.next();
          if (!first) sb.append(',');
          first = false;
          if (x == null) { sb.append("NULL"); continue; }
          e.setLength(0);
          scalar(x, kind, e);
          sb.append('"');
          for (int k = 0; k < e.length(); k++) {
            char ch = e.charAt(k);
            if (ch == '"' || ch == '\\') sb.append('\\');
            sb.append(ch);
          }
          sb.append('"');
        }
        sb.append('}');
        return;
      }
      scalar(v, kind, sb);
    }

    @SuppressWarnings("unchecked")
    static Iterator<Object> iter(Object v) {
      if (v instanceof scala.collection.Iterable) {
        scala.collection.Iterator<Object> s = ((scala.collection.Iterable<Object>) v).iterator();
        return new Iterator<Object>() {
          public boolean hasNext() { return s.hasNext(); }
          public Object next() { return s.next(); }
        };
      }
      if (v instanceof java.lang.Iterable) return ((java.lang.Iterable<Object>) v).iterator();
      if (v instanceof Object[]) return java.util.Arrays.asList((Object[]) v).iterator();
      throw new IllegalArgumentException("not a collection: " + v.getClass());
    }

    static void scalar(Object v, int kind, StringBuilder sb) {
      if (v instanceof String && kind == INTERVAL) duration((String) v, sb);
      else if (v instanceof String) sb.append((String) v);
      else if (v instanceof Long && kind == TIME) time((Long) v, sb);
      else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) sb.append(((Number) v).longValue());
      else if (v instanceof Double) dbl((Double) v, sb);
      else if (v instanceof Float) {
        float f = (Float) v;
        if (Float.isNaN(f) || Float.isInfinite(f)) dbl((double) f, sb); else sb.append(Float.toString(f));
      } else if (v instanceof Boolean) sb.append(((Boolean) v) ? "true" : "false");
      else if (v instanceof BigDecimal) dec((BigDecimal) v, sb);
      else if (v instanceof byte[]) {
        byte[] b = (byte[]) v;
        sb.append("\\x");
        for (byte x : b) sb.append(HEX[(x >> 4) & 15]).append(HEX[x & 15]);
      } else if (v instanceof Instant) ts((Instant) v, sb);
      else if (v instanceof java.sql.Timestamp) ts(((java.sql.Timestamp) v).toInstant(), sb);
      else if (v instanceof LocalDate) date((LocalDate) v, sb);
      else if (v instanceof java.sql.Date) date(((java.sql.Date) v).toLocalDate(), sb);
      else sb.append(v.toString());
    }

    static void dbl(double d, StringBuilder sb) {
      if (Double.isNaN(d)) sb.append("NaN");
      else if (Double.isInfinite(d)) sb.append(d > 0 ? "Infinity" : "-Infinity");
      else sb.append(Double.toString(d));
    }

    /** The connector types decimal as decimal(38,18): drop the padding zeros that adds. */
    static void dec(BigDecimal d, StringBuilder sb) {
      sb.append(d.scale() > 0 ? d.stripTrailingZeros().toPlainString() : d.toPlainString());
    }

    static void pad(StringBuilder sb, long v, int width) {
      String s = Long.toString(v);
      for (int k = s.length(); k < width; k++) sb.append('0');
      sb.append(s);
    }

    /** PostgreSQL wants years <= 0 as 'YYYY-MM-DD ... BC' (ISO year 0 = 1 BC). */
    static void ymd(int y, int m, int d, StringBuilder sb) {
      pad(sb, y <= 0 ? 1 - (long) y : y, 4);
      sb.append('-'); pad(sb, m, 2); sb.append('-'); pad(sb, d, 2);
    }

    static void ts(Instant i, StringBuilder sb) {
      LocalDateTime t = LocalDateTime.ofEpochSecond(i.getEpochSecond(), i.getNano(), ZoneOffset.UTC);
      ymd(t.getYear(), t.getMonthValue(), t.getDayOfMonth(), sb);
      sb.append(' '); pad(sb, t.getHour(), 2); sb.append(':'); pad(sb, t.getMinute(), 2); sb.append(':');
      pad(sb, t.getSecond(), 2);
      if (t.getNano() != 0) { sb.append('.'); pad(sb, t.getNano() / 1000, 6); }
      sb.append("+00");
      if (t.getYear() <= 0) sb.append(" BC");
    }

    static void date(LocalDate d, StringBuilder sb) {
      ymd(d.getYear(), d.getMonthValue(), d.getDayOfMonth(), sb);
      if (d.getYear() <= 0) sb.append(" BC");
    }

    /** CQL time: nanoseconds since midnight. PostgreSQL time keeps microseconds (it rounds the rest). */
    static void time(long nanos, StringBuilder sb) {
      long s = nanos / 1_000_000_000L, f = nanos % 1_000_000_000L;
      pad(sb, s / 3600, 2); sb.append(':'); pad(sb, (s / 60) % 60, 2); sb.append(':'); pad(sb, s % 60, 2);
      if (f != 0) { sb.append('.'); pad(sb, f, 9); }
    }

    /**
     * CQL duration, which the connector hands over in CQL's text form ([-]1y2mo3w4d5h6m7s8ms9us10ns), to a
     * PostgreSQL interval: months, days and microseconds (nanoseconds truncated), the sign on every part.
     */
    static void duration(String s, StringBuilder sb) {
      int p = 0;
      boolean neg = s.startsWith("-");
      if (neg) p = 1;
      long months = 0, days = 0, nanos = 0;
      while (p < s.length()) {
        int q = p;
        while (q < s.length() && Character.isDigit(s.charAt(q))) q++;
        if (q == p) throw new IllegalArgumentException("not a CQL duration: " + s);
        long n = Long.parseLong(s.substring(p, q));
        int u = q;
        while (u < s.length() && !Character.isDigit(s.charAt(u))) u++;
        String unit = s.substring(q, u).toLowerCase(java.util.Locale.ROOT);
        switch (unit) {
          case "y": months += 12 * n; break;
          case "mo": months += n; break;
          case "w": days += 7 * n; break;
          case "d": days += n; break;
          case "h": nanos += 3_600_000_000_000L * n; break;
          case "m": nanos += 60_000_000_000L * n; break;
          case "s": nanos += 1_000_000_000L * n; break;
          case "ms": nanos += 1_000_000L * n; break;
          case "us": case "\u00b5s": nanos += 1_000L * n; break;
          case "ns": nanos += n; break;
          default: throw new IllegalArgumentException("not a CQL duration: " + s);
        }
        p = u;
      }
      String sign = neg ? "-" : "";
      sb.append(sign).append(months).append(" mons ").append(sign).append(days).append(" days ")
          .append(sign).append(nanos / 1000).append(" microseconds");
    }

    static void json(Object v, DataType t, StringBuilder sb) {
      if (v == null) { sb.append("null"); return; }
      if (t instanceof ArrayType) {
        DataType et = ((ArrayType) t).elementType();
        sb.append('[');
        Iterator<Object> it = iter(v);
        boolean first = true;
        while (it.hasNext()) { if (!first) sb.append(','); first = false; json(it.next(), et, sb); }
        sb.append(']');
      } else if (t instanceof MapType) {
        MapType mt = (MapType) t;
        sb.append('{');
        @SuppressWarnings("unchecked")
        scala.collection.Iterator<scala.Tuple2<Object, Object>> it = ((scala.collection.Map<Object, Object>) v).iterator();
        boolean first = true;
        StringBuilder k = new StringBuilder();
        while (it.hasNext()) {
          scala.Tuple2<Object, Object> e = it.next();
          if (!first) sb.append(',');
          first = false;
          k.setLength(0);
          DataType kt = mt.keyType();
          if (kt instanceof ArrayType || kt instanceof MapType || kt instanceof StructType) json(e._1(), kt, k);
          else scalar(e._1(), PLAIN, k);
          jstr(k, sb);
          sb.append(':');
          json(e._2(), mt.valueType(), sb);
        }
        sb.append('}');
      } else if (t instanceof StructType) {
        StructField[] fs = ((StructType) t).fields();
        Row r = (Row) v;
        boolean tuple = true;                             // the connector names tuple fields 0, 1, ...
        for (int k = 0; k < fs.length; k++) tuple &= fs[k].name().equals(Integer.toString(k));
        sb.append(tuple ? '[' : '{');
        for (int k = 0; k < fs.length; k++) {
          if (k > 0) sb.append(',');
          if (!tuple) { jstr(fs[k].name(), sb); sb.append(':'); }
          json(r.isNullAt(k) ? null : r.get(k), fs[k].dataType(), sb);
        }
        sb.append(tuple ? ']' : '}');
      } else if (v instanceof Boolean) {
        sb.append(((Boolean) v) ? "true" : "false");
      } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
        sb.append(((Number) v).longValue());
      } else if (v instanceof BigDecimal) {
        dec((BigDecimal) v, sb);
      } else if ((v instanceof Double && Double.isFinite((Double) v)) || (v instanceof Float && Float.isFinite((Float) v))) {
        scalar(v, PLAIN, sb);
      } else {                                            // text, uuid, inet, blob, timestamp, date, NaN, ...
        StringBuilder s = new StringBuilder();
        scalar(v, PLAIN, s);
        jstr(s, sb);
      }
    }

    static void jstr(CharSequence s, StringBuilder sb) {
      sb.append('"');
      for (int k = 0; k < s.length(); k++) {
        char ch = s.charAt(k);
        switch (ch) {
          case '"': sb.append("\\\""); break;
          case '\\': sb.append("\\\\"); break;
          case '\n': sb.append("\\n"); break;
          case '\r': sb.append("\\r"); break;
          case '\t': sb.append("\\t"); break;
          default:
            if (ch < 0x20) { sb.append("\\u"); pad(sb, 0, 0); sb.append(String.format("%04x", (int) ch)); }
            else sb.append(ch);
        }
      }
      sb.append('"');
    }
  }
}
