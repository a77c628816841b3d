//! The canonical form of a row, shared by both sides of a validation, and the hashes built on it.
//!
//! A row is the concatenation of its fields in source column order, each an `i32` length and a
//! payload in PostgreSQL's binary send format — what `ferry migrate` writes into COPY — except
//! for the three types whose binary form PostgreSQL does not hand back byte for byte:
//!
//! - `numeric`: `numeric_recv` strips leading and trailing zero base-10000 digits and gives zero
//!   weight 0 and a positive sign; the canonical form does the same, so equal values with equal
//!   scale are equal bytes.
//! - `jsonb`: `jsonb_send` is a version byte and the *stored* document re-rendered (keys sorted,
//!   duplicates dropped, spacing added, numbers re-printed from `numeric`). The canonical form is
//!   the version byte and compact JSON with keys in byte order (last duplicate wins, as in
//!   `jsonb`), strings re-escaped minimally, and numbers written as `numeric_out` would print
//!   them: exact digits, no exponent, scale `max(0, fraction digits - exponent)`, and no sign on
//!   zero (`-0.0` becomes `0.0`, as `jsonb` stores it). So `1e2` and `100` are equal, `1.50` and
//!   `1.5` are not — exactly PostgreSQL's own notion.
//! - arrays: the element type OID is zeroed (a `character varying[]` target column sends OID
//!   1043 where ferry writes `text`'s 25, the same values), and `numeric` elements are
//!   canonicalized as above.
//!
//! A value the source side cannot encode (a reject) and a payload that fails to parse are kept
//! as raw bytes behind negative lengths (-2, -3) that no real field has, so they can never
//! compare equal to a real value.

use bytes::{BufMut, BytesMut};
use twox_hash::XxHash3_64;

use crate::cql::{PgScalar, PgType};

/// How a field's binary payload is brought to canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// The payload is already canonical.
    Plain,
    Numeric,
    Jsonb,
    /// A one-dimensional array; `numeric_elements` when its elements need canonicalizing.
    Array {
        numeric_elements: bool,
    },
}

impl FieldKind {
    pub fn of(ty: PgType) -> Self {
        match ty {
            PgType::Numeric => FieldKind::Numeric,
            PgType::Jsonb => FieldKind::Jsonb,
            PgType::Array(e) => FieldKind::Array {
                numeric_elements: e == PgScalar::Numeric,
            },
            _ => FieldKind::Plain,
        }
    }
}

/// Length marker of a source value ferry would reject: raw CQL bytes follow.
pub const REJECTED: i32 = -2;
/// Length marker of a payload that did not parse as its type: the raw payload follows.
pub const UNPARSED: i32 = -3;

/// Appends one canonical field (length + payload, `None` = NULL).
pub fn put_field(kind: FieldKind, payload: Option<&[u8]>, out: &mut BytesMut) {
    let Some(p) = payload else {
        out.put_i32(-1);
        return;
    };
    if kind == FieldKind::Plain {
        out.put_i32(p.len() as i32);
        out.put_slice(p);
        return;
    }
    let start = out.len();
    out.put_i32(0);
    let ok = match kind {
        FieldKind::Plain => unreachable!("handled above"),
        FieldKind::Numeric => numeric(p, out),
        FieldKind::Jsonb => jsonb(p, out),
        FieldKind::Array { numeric_elements } => array(p, numeric_elements, out),
    };
    if ok.is_none() {
        out.truncate(start);
        put_marked(UNPARSED, p, out);
        return;
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A marker length, then the raw bytes with their own length.
pub fn put_marked(marker: i32, raw: &[u8], out: &mut BytesMut) {
    out.put_i32(marker);
    out.put_i32(raw.len() as i32);
    out.put_slice(raw);
}

/// A canonical row: its bytes and where each field starts (one more entry: the end).
#[derive(Default)]
pub struct RowBuf {
    pub bytes: BytesMut,
    pub offsets: Vec<usize>,
}

impl RowBuf {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.offsets.clear();
        self.offsets.push(0);
    }

    /// Marks the end of the field just written.
    pub fn end_field(&mut self) {
        self.offsets.push(self.bytes.len());
    }

    /// The canonical bytes of the first `key_cols` fields: the row's identity.
    pub fn key(&self, key_cols: usize) -> &[u8] {
        &self.bytes[..self.offsets[key_cols]]
    }

    pub fn field(&self, i: usize) -> &[u8] {
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }

    pub fn fields(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn hash(&self) -> u64 {
        row_hash(&self.bytes)
    }

    /// One hash per field, to name the columns that differ.
    pub fn field_hashes(&self) -> Box<[u64]> {
        (0..self.fields())
            .map(|i| XxHash3_64::oneshot_with_seed(FIELD_SEED, self.field(i)))
            .collect()
    }
}

const ROW_SEED: u64 = 0x6665_7272_795f_726f; // "ferry_ro"
const KEY_SEED: u64 = 0x6665_7272_795f_6b65; // "ferry_ke"
const FIELD_SEED: u64 = 0x6665_7272_795f_6669; // "ferry_fi"

/// The row's hash (xxh3-64 of its canonical bytes, key included, so a value that moved to
/// another row changes both rows' hashes).
pub fn row_hash(row: &[u8]) -> u64 {
    XxHash3_64::oneshot_with_seed(ROW_SEED, row)
}

/// The bucket of a key: a hash of its canonical bytes, mapped onto `0..buckets` by
/// multiply-shift (uniform, no modulo bias worth the name).
pub fn bucket_of(key: &[u8], buckets: u32) -> u32 {
    let h = XxHash3_64::oneshot_with_seed(KEY_SEED, key);
    ((u128::from(h) * u128::from(buckets)) >> 64) as u32
}

/// Per-bucket row count and order-independent digest (the wrapping sum of row hashes), shared
/// by all readers of one side.
pub struct Buckets {
    counts: Vec<std::sync::atomic::AtomicU64>,
    digests: Vec<std::sync::atomic::AtomicU64>,
}

impl Buckets {
    pub fn new(n: u32) -> Self {
        Buckets {
            counts: (0..n).map(|_| Default::default()).collect(),
            digests: (0..n).map(|_| Default::default()).collect(),
        }
    }

    pub fn len(&self) -> u32 {
        self.counts.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn add(&self, bucket: u32, row_hash: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counts[bucket as usize].fetch_add(1, Relaxed);
        self.digests[bucket as usize].fetch_add(row_hash, Relaxed);
    }

    pub fn get(&self, bucket: u32) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.counts[bucket as usize].load(Relaxed),
            self.digests[bucket as usize].load(Relaxed),
        )
    }

    pub fn total(&self) -> u64 {
        (0..self.len()).map(|b| self.get(b).0).sum()
    }

    /// Buckets whose count or digest differ from `other`'s.
    pub fn differing(&self, other: &Buckets) -> Vec<u32> {
        (0..self.len())
            .filter(|&b| self.get(b) != other.get(b))
            .collect()
    }
}

/// A set of buckets as a bitmap.
pub struct BucketSet(Vec<u64>);

impl BucketSet {
    pub fn new(n: u32, members: &[u32]) -> Self {
        let mut bits = vec![0u64; (n as usize).div_ceil(64)];
        for &b in members {
            bits[b as usize / 64] |= 1 << (b % 64);
        }
        BucketSet(bits)
    }

    pub fn contains(&self, b: u32) -> bool {
        self.0
            .get(b as usize / 64)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }
}

// ------------------------------------------------------------------------------------ numeric

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// `numeric_send` bytes with zero digits stripped as `numeric_recv` strips them.
fn numeric(p: &[u8], out: &mut BytesMut) -> Option<()> {
    let head = p.get(..8)?;
    let ndigits = usize::from(u16::from_be_bytes([head[0], head[1]]));
    let mut weight = i16::from_be_bytes([head[2], head[3]]);
    let mut sign = u16::from_be_bytes([head[4], head[5]]);
    let dscale = u16::from_be_bytes([head[6], head[7]]);
    let body = p.get(8..8 + 2 * ndigits)?;
    if p.len() != 8 + 2 * ndigits {
        return None;
    }
    let mut digits: Vec<u16> = body
        .chunks_exact(2)
        .map(|d| u16::from_be_bytes([d[0], d[1]]))
        .collect();
    let lead = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..lead);
    weight = weight.wrapping_sub(lead as i16);
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() && (sign == NUMERIC_POS || sign == NUMERIC_NEG) {
        weight = 0;
        sign = NUMERIC_POS;
    }
    out.put_u16(digits.len() as u16);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
    for d in digits {
        out.put_u16(d);
    }
    Some(())
}

// -------------------------------------------------------------------------------------- array

/// `array_send` bytes with the element OID zeroed (and numeric elements canonical).
fn array(p: &[u8], numeric_elements: bool, out: &mut BytesMut) -> Option<()> {
    let mut r = p;
    let ndim = take_i32(&mut r)?;
    let flags = take_i32(&mut r)?;
    let _oid = take_i32(&mut r)?;
    if !(0..=6).contains(&ndim) {
        return None;
    }
    out.put_i32(ndim);
    out.put_i32(flags);
    out.put_i32(0);
    let mut count: usize = usize::from(ndim > 0);
    for _ in 0..ndim {
        let len = take_i32(&mut r)?;
        let lbound = take_i32(&mut r)?;
        count = count.checked_mul(usize::try_from(len).ok()?)?;
        out.put_i32(len);
        out.put_i32(lbound);
    }
    let kind = if numeric_elements {
        FieldKind::Numeric
    } else {
        FieldKind::Plain
    };
    for _ in 0..count {
        let len = take_i32(&mut r)?;
        if len < 0 {
            out.put_i32(-1);
            continue;
        }
        let e = r.get(..len as usize)?;
        r = &r[len as usize..];
        put_field(kind, Some(e), out);
    }
    r.is_empty().then_some(())
}

fn take_i32(r: &mut &[u8]) -> Option<i32> {
    let (head, rest) = r.split_first_chunk::<4>()?;
    *r = rest;
    Some(i32::from_be_bytes(*head))
}

// --------------------------------------------------------------------------------------- jsonb

/// `jsonb` binary (version 1 + text) → version 1 + canonical JSON.
fn jsonb(p: &[u8], out: &mut BytesMut) -> Option<()> {
    let (&version, text) = p.split_first()?;
    if version != 1 {
        return None;
    }
    let mut canon = Vec::with_capacity(text.len());
    canonical_json(text, &mut canon)?;
    out.put_u8(1);
    out.put_slice(&canon);
    Some(())
}

/// Rewrites a JSON document in the canonical form described on this module. `None` when the
/// text is not JSON (or nests deeper than 1000 levels).
pub fn canonical_json(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut p = Parser { s: text, i: 0 };
    p.value(out, 0)?;
    p.ws();
    (p.i == p.s.len()).then_some(())
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        if depth > 1000 {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => self.object(out, depth),
            b'[' => {
                self.i += 1;
                out.push(b'[');
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                } else {
                    loop {
                        self.value(out, depth + 1)?;
                        self.ws();
                        match self.peek()? {
                            b',' => {
                                self.i += 1;
                                out.push(b',');
                            }
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(b']');
                Some(())
            }
            b'"' => self.string(out),
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if self.s.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        out.extend_from_slice(word);
        Some(())
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        self.i += 1;
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let mut key = Vec::new();
                self.string(&mut key)?;
                self.eat(b':')?;
                let mut value = Vec::new();
                self.value(&mut value, depth + 1)?;
                members.push((key, value));
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        // Stable sort, then keep the last of equal keys: jsonb's "last duplicate wins".
        members.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'{');
        let mut first = true;
        for (i, (k, v)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(k);
            out.push(b':');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Some(())
    }

    /// A string, decoded and re-escaped: only `"`, `\` and control characters are escaped.
    fn string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        out.push(b'"');
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    push_char(c, out);
                }
                0..=0x1f => return None,
                _ => push_byte(b, out),
            }
        }
        out.push(b'"');
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// A number as PostgreSQL's `numeric_out` prints what `numeric_in` read.
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let int = &self.s[int_start..self.i];
        if int.is_empty() {
            return None;
        }
        let mut frac: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.i += 1;
            let f = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            frac = &self.s[f..self.i];
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let neg = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let e = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[e..self.i]).ok()?;
            exp = digits.parse::<i64>().ok()?;
            if neg {
                exp = -exp;
            }
        }
        // numeric's limits are far inside this; refusing keeps a hostile exponent from
        // allocating gigabytes.
        if exp.abs() > 200_000 {
            return None;
        }
        write_numeric_text(negative, int, frac, exp, out);
        Some(())
    }
}

fn push_char(c: char, out: &mut Vec<u8>) {
    if (c as u32) < 0x80 {
        push_byte(c as u8, out);
    } else {
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
}

fn push_byte(b: u8, out: &mut Vec<u8>) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        _ => out.push(b),
    }
}

/// `int.frac × 10^exp` with `max(0, frac digits - exp)` digits after the point, no exponent,
/// no leading zeros, and no sign on zero.
fn write_numeric_text(negative: bool, int: &[u8], frac: &[u8], exp: i64, out: &mut Vec<u8>) {
    let all: Vec<u8> = int.iter().chain(frac).copied().collect();
    let dscale = (frac.len() as i64 - exp).max(0);
    let point = int.len() as i64 + exp; // digits of `all` before the decimal point
    let digit = |i: i64| -> u8 {
        if i >= 0 && (i as usize) < all.len() {
            all[i as usize]
        } else {
            b'0'
        }
    };
    let zero = all.iter().all(|&d| d == b'0');
    if negative && !zero {
        out.push(b'-');
    }
    let first_nonzero = (0..point).find(|&i| digit(i) != b'0');
    match first_nonzero {
        Some(start) => out.extend((start..point).map(digit)),
        None => out.push(b'0'),
    }
    if dscale > 0 {
        out.push(b'.');
        out.extend((point..point + dscale).map(digit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        let mut out = Vec::new();
        canonical_json(s.as_bytes(), &mut out).unwrap_or_else(|| panic!("not JSON: {s}"));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_numbers_print_as_postgres_numeric_out() {
        // Each right-hand side is what PostgreSQL 15 returns for `'<left>'::jsonb`.
        for (input, pg) in [
            ("1e300", &format!("1{}", "0".repeat(300))[..]),
            ("1.5e-7", "0.00000015"),
            ("1.50", "1.50"),
            ("100.0", "100.0"),
            ("1E+2", "100"),
            ("1.0e-2", "0.010"),
            ("-0.00", "0.00"),
            ("-0.0", "0.0"),
            ("-0", "0"),
            ("12e-1", "1.2"),
            ("007", "7"),
            ("-12.5e1", "-125"),
            ("0.1", "0.1"),
        ] {
            assert_eq!(canon(input), pg, "{input}");
            assert_eq!(canon(pg), pg, "canonical form of {pg} is stable");
        }
    }

    #[test]
    fn json_objects_sort_keys_drop_duplicates_and_spacing() {
        assert_eq!(
            canon(r#"{"b":1,"a":2,"aa":3,"a":4}"#),
            r#"{"a":4,"aa":3,"b":1}"#
        );
        // PostgreSQL's own rendering of the same document canonicalizes identically.
        assert_eq!(
            canon(r#"{"a": 4, "b": 1, "aa": 3}"#),
            r#"{"a":4,"aa":3,"b":1}"#
        );
        assert_eq!(
            canon(r#"[ {"z" : [1, 2.0, "x"]}, null, true , false ]"#),
            r#"[{"z":[1,2.0,"x"]},null,true,false]"#
        );
        assert_eq!(canon("{}"), "{}");
        assert_eq!(canon("[]"), "[]");
    }

    #[test]
    fn json_strings_are_decoded_and_reescaped_minimally() {
        assert_eq!(
            canon(r#""\u00e9\t\u001f\/\ud83d\ude00""#),
            "\"é\\u0009\\u001f/😀\""
        );
        assert_eq!(canon("\"é\\t\\u001f/😀\""), "\"é\\u0009\\u001f/😀\"");
        assert_eq!(canon(r#""a\"b\\c""#), r#""a\"b\\c""#);
    }

    #[test]
    fn malformed_json_is_refused() {
        for bad in [
            "{",
            "[1,]",
            "01x",
            "\"abc",
            "{\"a\" 1}",
            "1.",
            "-",
            "nul",
            "[1] 2",
        ] {
            assert!(
                canonical_json(bad.as_bytes(), &mut Vec::new()).is_none(),
                "{bad}"
            );
        }
    }

    fn numeric_bytes(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight as u16, sign, dscale] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    fn canonical_field(kind: FieldKind, p: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_field(kind, Some(p), &mut out);
        out.to_vec()
    }

    #[test]
    fn numeric_strips_zero_digits_and_signs_zero_positive() {
        let stripped = canonical_field(
            FieldKind::Numeric,
            &numeric_bytes(1, 1, NUMERIC_POS, 0, &[1]),
        );
        let padded = canonical_field(
            FieldKind::Numeric,
            &numeric_bytes(3, 2, NUMERIC_POS, 0, &[0, 1, 0]),
        );
        assert_eq!(stripped, padded, "10000 with and without zero digits");
        let zero = canonical_field(
            FieldKind::Numeric,
            &numeric_bytes(0, 0, NUMERIC_POS, 2, &[]),
        );
        let neg_zero = canonical_field(
            FieldKind::Numeric,
            &numeric_bytes(1, 3, NUMERIC_NEG, 2, &[0]),
        );
        assert_eq!(zero, neg_zero);
        let other_scale = canonical_field(
            FieldKind::Numeric,
            &numeric_bytes(0, 0, NUMERIC_POS, 1, &[]),
        );
        assert_ne!(
            zero, other_scale,
            "scale is part of the value, as in PostgreSQL"
        );
        let bad = canonical_field(FieldKind::Numeric, &[0, 1]);
        assert_eq!(&bad[..4], &UNPARSED.to_be_bytes());
    }

    #[test]
    fn arrays_ignore_the_element_oid() {
        let arr = |oid: u32| {
            let mut v = Vec::new();
            for x in [1i32, 0, oid as i32, 2, 1, 1] {
                v.extend_from_slice(&x.to_be_bytes());
            }
            v.push(b'a');
            v.extend_from_slice(&(-1i32).to_be_bytes());
            v
        };
        let text = canonical_field(
            FieldKind::Array {
                numeric_elements: false,
            },
            &arr(25),
        );
        let varchar = canonical_field(
            FieldKind::Array {
                numeric_elements: false,
            },
            &arr(1043),
        );
        assert_eq!(text, varchar);
        let mut truncated = arr(25);
        truncated.pop();
        let bad = canonical_field(
            FieldKind::Array {
                numeric_elements: false,
            },
            &truncated,
        );
        assert_eq!(&bad[..4], &UNPARSED.to_be_bytes());
    }

    #[test]
    fn jsonb_fields_compare_by_document_not_by_text() {
        let ferry = b"\x01{\"street\":\"Main\",\"zip\":-0.0,\"tags\":[\"a\"]}";
        let pg = b"\x01{\"zip\": 0.0, \"tags\": [\"a\"], \"street\": \"Main\"}";
        assert_eq!(
            canonical_field(FieldKind::Jsonb, ferry),
            canonical_field(FieldKind::Jsonb, pg)
        );
        let changed = b"\x01{\"zip\": 0.0, \"tags\": [\"b\"], \"street\": \"Main\"}";
        assert_ne!(
            canonical_field(FieldKind::Jsonb, ferry),
            canonical_field(FieldKind::Jsonb, changed)
        );
    }

    #[test]
    fn buckets_are_uniform_and_stable() {
        let n = 64u32;
        let mut hist = vec![0u32; n as usize];
        for i in 0u64..64_000 {
            let b = bucket_of(&i.to_be_bytes(), n);
            assert_eq!(b, bucket_of(&i.to_be_bytes(), n));
            hist[b as usize] += 1;
        }
        // 1000 expected per bucket; 6 standard deviations (~190) either side.
        assert!(hist.iter().all(|&c| (800..1200).contains(&c)), "{hist:?}");
    }

    #[test]
    fn digests_are_order_independent_and_see_any_change() {
        let rows: Vec<Vec<u8>> = (0u32..100).map(|i| i.to_be_bytes().to_vec()).collect();
        let a = Buckets::new(8);
        let b = Buckets::new(8);
        for r in &rows {
            a.add(bucket_of(r, 8), row_hash(r));
        }
        for r in rows.iter().rev() {
            b.add(bucket_of(r, 8), row_hash(r));
        }
        assert!(a.differing(&b).is_empty());
        assert_eq!(a.total(), 100);
        // One row changed: exactly its bucket differs.
        let c = Buckets::new(8);
        for (i, r) in rows.iter().enumerate() {
            let h = if i == 42 {
                row_hash(b"changed")
            } else {
                row_hash(r)
            };
            c.add(bucket_of(r, 8), h);
        }
        assert_eq!(a.differing(&c), vec![bucket_of(&rows[42], 8)]);
        let set = BucketSet::new(8, &a.differing(&c));
        assert!(set.contains(bucket_of(&rows[42], 8)));
        assert_eq!((0..8).filter(|&b| set.contains(b)).count(), 1);
    }
}
