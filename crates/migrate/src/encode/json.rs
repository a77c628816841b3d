//! Composite CQL values (maps, tuples, UDTs, nested collections) as JSON text, written straight
//! into the output buffer: the `jsonb` field of a COPY stream, or the text behind
//! [`super::cql_to_json`]. The shape is documented on the parent module.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::{
    empty_value, fixed, numeric, patch_length, temporal, utf8, Reject, VectorElements, Wire,
};
use crate::cql::CqlType;

/// `jsonb`'s binary format version.
const JSONB_VERSION: u8 = 1;
/// PostgreSQL's `JENTRY_OFFLENMASK`: the largest `jsonb` document, in bytes.
const JSONB_MAX_BYTES: usize = 0x0FFF_FFFF;

/// Who reads the text; only numbers differ (see [`Json::number`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// PostgreSQL's `jsonb` input: numbers are `numeric`, exact at any size.
    Jsonb,
    /// `serde_json` without `arbitrary_precision`: numbers are i64/u64/f64.
    SerdeValue,
}

/// A `jsonb` field: length, version byte, JSON text.
pub(super) fn encode_jsonb(ty: &CqlType, v: &[u8], out: &mut BytesMut) -> Result<(), Reject> {
    let field_start = out.len();
    out.reserve(v.len() * 2 + 16);
    out.put_i32(0);
    out.put_u8(JSONB_VERSION);
    Json::new(out, Reader::Jsonb).value(ty, Some(v))?;
    let len = out.len() - field_start - 5;
    if len > JSONB_MAX_BYTES {
        return Err(Reject::new(format!(
            "{ty} value as JSON is {len} bytes, more than PostgreSQL jsonb can hold"
        )));
    }
    patch_length(ty, field_start, out)
}

/// JSON text for a `serde_json::Value`.
pub(super) fn write_value_json(
    ty: &CqlType,
    cell: Option<&[u8]>,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    Json::new(out, Reader::SerdeValue).value(ty, cell)
}

/// A JSON writer over the CQL wire format. Commas need no stack: a value or key is preceded by a
/// comma unless it is the first thing after `[`, `{` or a key.
struct Json<'o> {
    out: &'o mut BytesMut,
    reader: Reader,
    need_comma: bool,
    /// Writing a scalar map key: strings without quotes, the caller adds them.
    bare: bool,
}

impl<'o> Json<'o> {
    fn new(out: &'o mut BytesMut, reader: Reader) -> Self {
        Json {
            out,
            reader,
            need_comma: false,
            bare: false,
        }
    }

    /// Comma before a value, when one is due.
    fn sep(&mut self) {
        if self.need_comma && !self.bare {
            self.out.put_u8(b',');
        }
        self.need_comma = true;
    }

    fn raw(&mut self, s: &str) {
        self.sep();
        self.out.put_slice(s.as_bytes());
    }

    fn quote(&mut self) {
        if !self.bare {
            self.out.put_u8(b'"');
        }
    }

    /// A string whose text `f` writes; the text is escaped on the way.
    fn string_with(
        &mut self,
        f: impl FnOnce(&mut Escaped<'_>) -> fmt::Result,
    ) -> Result<(), Reject> {
        self.sep();
        self.quote();
        f(&mut Escaped(self.out)).map_err(|_| Reject::new("internal error: formatting failed"))?;
        self.quote();
        Ok(())
    }

    /// Something with a `Display` form that is a valid JSON number.
    fn number(&mut self, n: impl fmt::Display) {
        self.sep();
        let _ = write!(self.out, "{n}");
    }

    fn float(&mut self, v: f64, shortest: impl fmt::Debug) -> Result<(), Reject> {
        if v.is_finite() {
            // Debug is the shortest text that round-trips, in JSON-compatible syntax (1e30, -0.0).
            self.sep();
            let _ = write!(self.out, "{shortest:?}");
            return Ok(());
        }
        let name = if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        self.string_with(|w| w.write_str(name))
    }

    /// A varint or decimal. For `jsonb` the exact digits; for a `serde_json::Value` a number only
    /// where it survives i64/u64/f64 unchanged, else a string of the exact digits.
    fn exact_number(&mut self, ty: &CqlType, varint: &[u8], scale: i32) -> Result<(), Reject> {
        if self.reader == Reader::Jsonb || self.bare {
            self.sep();
            return numeric::write_json_number(ty, varint, scale, &mut *self.out);
        }
        let mut text = String::new();
        numeric::write_json_number(ty, varint, scale, &mut text)?;
        if serde_keeps_exactly(&text) {
            self.raw(&text);
            Ok(())
        } else {
            self.string_with(|w| w.write_str(&text))
        }
    }

    fn begin(&mut self, bracket: u8) {
        self.sep();
        self.out.put_u8(bracket);
        self.need_comma = false;
    }

    fn end(&mut self, bracket: u8) {
        self.out.put_u8(bracket);
        self.need_comma = true;
    }

    /// An object key from a plain name (UDT fields).
    fn name_key(&mut self, name: &str) -> Result<(), Reject> {
        if name.contains('\0') {
            return Err(Reject::new(format!(
                "field name {name:?} contains U+0000, which PostgreSQL jsonb cannot store"
            )));
        }
        self.sep();
        self.out.put_u8(b'"');
        let _ = Escaped(self.out).write_str(name);
        self.out.put_slice(b"\":");
        self.need_comma = false;
        Ok(())
    }

    /// A map key, rendered as a JSON string (see the module docs).
    fn map_key(&mut self, ty: &CqlType, v: &[u8]) -> Result<(), Reject> {
        self.sep();
        self.out.put_u8(b'"');
        if ty.is_scalar() {
            self.bare = true;
            let written = self.value(ty, Some(v));
            self.bare = false;
            written?;
        } else {
            let mut text = BytesMut::new();
            Json::new(&mut text, Reader::Jsonb).value(ty, Some(v))?;
            // Valid UTF-8: the writer only emits validated text and ASCII.
            let text = std::str::from_utf8(&text)
                .map_err(|_| Reject::new("internal error: JSON key is not UTF-8"))?;
            let _ = Escaped(self.out).write_str(text);
        }
        self.out.put_slice(b"\":");
        self.need_comma = false;
        Ok(())
    }

    /// One value of type `ty`; `None` is null.
    fn value(&mut self, ty: &CqlType, cell: Option<&[u8]>) -> Result<(), Reject> {
        let Some(v) = cell else {
            self.raw("null");
            return Ok(());
        };
        match ty {
            CqlType::Ascii | CqlType::Text => {
                let s = utf8(ty, v)?;
                if v.contains(&0) {
                    return Err(Reject::new(format!(
                        "{ty} contains U+0000, which PostgreSQL jsonb cannot store"
                    )));
                }
                self.string_with(|w| w.write_str(s))
            }
            CqlType::Blob => self.string_with(|w| {
                w.write_str("\\x")?;
                v.iter().try_for_each(|b| write!(w, "{b:02x}"))
            }),
            CqlType::Boolean => {
                let [b] = fixed::<1>(ty, v)?;
                self.raw(if b != 0 { "true" } else { "false" });
                Ok(())
            }
            CqlType::TinyInt => {
                self.number(fixed::<1>(ty, v)?[0] as i8);
                Ok(())
            }
            CqlType::SmallInt => {
                self.number(i16::from_be_bytes(fixed(ty, v)?));
                Ok(())
            }
            CqlType::Int => {
                self.number(i32::from_be_bytes(fixed(ty, v)?));
                Ok(())
            }
            CqlType::BigInt | CqlType::Counter => {
                self.number(i64::from_be_bytes(fixed(ty, v)?));
                Ok(())
            }
            CqlType::Float => {
                let f = f32::from_be_bytes(fixed(ty, v)?);
                self.float(f64::from(f), f)
            }
            CqlType::Double => {
                let f = f64::from_be_bytes(fixed(ty, v)?);
                self.float(f, f)
            }
            CqlType::Varint => self.exact_number(ty, v, 0),
            CqlType::Decimal => {
                let (scale, unscaled) = numeric::split_decimal(ty, v)?;
                self.exact_number(ty, unscaled, scale)
            }
            CqlType::Uuid | CqlType::Timeuuid => {
                let u = uuid::Uuid::from_bytes(fixed(ty, v)?);
                self.string_with(|w| write!(w, "{}", u.hyphenated()))
            }
            CqlType::Inet => match v.len() {
                4 => {
                    let a = Ipv4Addr::from(<[u8; 4]>::try_from(v).unwrap_or_default());
                    self.string_with(|w| write!(w, "{a}"))
                }
                16 => {
                    let a = Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap_or_default());
                    self.string_with(|w| write!(w, "{a}"))
                }
                0 => Err(empty_value(ty)),
                n => Err(Reject::malformed(
                    ty,
                    format_args!("{n} bytes, not 4 or 16"),
                )),
            },
            CqlType::Timestamp => {
                let ms = i64::from_be_bytes(fixed(ty, v)?);
                self.string_with(|w| temporal::write_timestamp(w, ms))
            }
            CqlType::Date => {
                let days = u32::from_be_bytes(fixed(ty, v)?);
                self.string_with(|w| temporal::write_cql_date(w, days))
            }
            CqlType::Time => {
                let ns = i64::from_be_bytes(fixed(ty, v)?);
                temporal::check_time(ns)?;
                self.string_with(|w| temporal::write_time(w, ns))
            }
            CqlType::Duration => {
                let d = temporal::Duration::decode(v)?;
                self.string_with(|w| d.write(w))
            }
            CqlType::List(element) | CqlType::Set(element) => {
                let mut wire = Wire::new(ty, v);
                let count = wire.count()?;
                self.begin(b'[');
                for i in 0..count {
                    let cell = wire.cell()?;
                    self.value(element, cell)
                        .map_err(|r| r.within(ty, format_args!("element {i}")))?;
                }
                wire.finish()?;
                self.end(b']');
                Ok(())
            }
            CqlType::Map(key_ty, value_ty) => {
                let mut wire = Wire::new(ty, v);
                let count = wire.count()?;
                self.begin(b'{');
                for i in 0..count {
                    let key = wire
                        .cell()?
                        .ok_or_else(|| Reject::malformed(ty, format_args!("key {i} is null")))?;
                    self.map_key(key_ty, key)
                        .map_err(|r| r.within(ty, format_args!("key {i}")))?;
                    let cell = wire.cell()?;
                    self.value(value_ty, cell)
                        .map_err(|r| r.within(ty, format_args!("value {i}")))?;
                }
                wire.finish()?;
                self.end(b'}');
                Ok(())
            }
            CqlType::Tuple(types) => {
                let mut wire = Wire::new(ty, v);
                self.begin(b'[');
                for (i, t) in types.iter().enumerate() {
                    let cell = if wire.is_empty() { None } else { wire.cell()? };
                    self.value(t, cell)
                        .map_err(|r| r.within(ty, format_args!("component {i}")))?;
                }
                wire.finish()?;
                self.end(b']');
                Ok(())
            }
            CqlType::Udt { fields, .. } => {
                let mut wire = Wire::new(ty, v);
                self.begin(b'{');
                for (name, t) in fields {
                    // A UDT value written before fields were added ends early: those are null.
                    let cell = if wire.is_empty() { None } else { wire.cell()? };
                    self.name_key(name)?;
                    self.value(t, cell)
                        .map_err(|r| r.within(ty, format_args!("field {name}")))?;
                }
                wire.finish()?;
                self.end(b'}');
                Ok(())
            }
            CqlType::Vector {
                element,
                dimensions,
            } => {
                let mut elements = VectorElements::new(ty, element, *dimensions, v)?;
                self.begin(b'[');
                let mut i = 0usize;
                while let Some(e) = elements.next_element()? {
                    self.value(element, Some(e))
                        .map_err(|r| r.within(ty, format_args!("element {i}")))?;
                    i += 1;
                }
                self.end(b']');
                Ok(())
            }
        }
    }
}

/// Writes JSON string content: escapes `"`, `\` and control characters, nothing else.
struct Escaped<'o>(&'o mut BytesMut);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x00..=0x1f => b"",
                _ => continue,
            };
            self.0.put_slice(&bytes[start..i]);
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{b:04x}");
            } else {
                self.0.put_slice(escape);
            }
            start = i + 1;
        }
        self.0.put_slice(&bytes[start..]);
        Ok(())
    }
}

/// Whether `serde_json` (without `arbitrary_precision`) reads this JSON number back unchanged.
fn serde_keeps_exactly(text: &str) -> bool {
    if !text.contains(['.', 'e', 'E']) {
        return text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
    }
    let Ok(f) = text.parse::<f64>() else {
        return false;
    };
    if !f.is_finite() {
        return false;
    }
    // f64 parsing is correctly rounded and Debug prints the shortest round-trip text, so the
    // value survives exactly when those digits denote the same number.
    use std::str::FromStr;
    match (
        bigdecimal::BigDecimal::from_str(text),
        bigdecimal::BigDecimal::from_str(&format!("{f:?}")),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
