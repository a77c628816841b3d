//! CQL `varint` and `decimal` → PostgreSQL `numeric` (binary, base 10000) and exact JSON text.
//!
//! Both start from the decimal digits of the magnitude: varints up to 128 bits (nearly all real
//! values) are converted on the stack; wider ones go through `num_bigint`.

use bytes::{BufMut, BytesMut};
use num_bigint::{BigInt, Sign};

use super::{empty_value, Reject};
use crate::cql::CqlType;

/// PostgreSQL's `NUMERIC_DSCALE_MAX`: digits after the decimal point.
const PG_MAX_DSCALE: i64 = 0x3FFF;
/// PostgreSQL stores the weight (position of the first base-10000 digit) as an `int16`.
const PG_MAX_WEIGHT: i64 = i16::MAX as i64;
/// A varint this long has more digits than `numeric` allows before the point (131072 digits
/// need ~54.4 kB); refuse it before converting.
const MAX_VARINT_BYTES: usize = 55_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// A decimal value by its parts: `(-1)^negative × digits × 10^(-scale)`.
pub(super) struct DecimalDigits<'a> {
    pub negative: bool,
    /// ASCII digits of the magnitude, no leading zeros ("0" for zero).
    pub digits: &'a [u8],
    pub scale: i32,
}

impl DecimalDigits<'_> {
    fn is_zero(&self) -> bool {
        self.digits == b"0"
    }

    /// Decimal exponent of the most significant digit.
    fn top_exponent(&self) -> i64 {
        self.digits.len() as i64 - 1 - i64::from(self.scale)
    }

    /// Rejects values `numeric` cannot hold exactly.
    fn check_pg_range(&self, ty: &CqlType) -> Result<(), Reject> {
        if i64::from(self.scale) > PG_MAX_DSCALE {
            return Err(Reject::new(format!(
                "{ty} with {} digits after the decimal point exceeds PostgreSQL numeric's \
                 maximum of {PG_MAX_DSCALE}",
                self.scale
            )));
        }
        if !self.is_zero() && self.top_exponent().div_euclid(4) > PG_MAX_WEIGHT {
            return Err(Reject::new(format!(
                "{ty} with {} digits before the decimal point exceeds PostgreSQL numeric's \
                 maximum of {}",
                self.top_exponent() + 1,
                (PG_MAX_WEIGHT + 1) * 4
            )));
        }
        Ok(())
    }

    /// PostgreSQL's numeric_send: ndigits, weight, sign, dscale (all 16-bit), then base-10000
    /// digits from the most significant one, trailing zero digits omitted.
    fn put_pg_binary(&self, out: &mut BytesMut) {
        let dscale = self.scale.max(0) as u16;
        let field_start = out.len();
        if self.is_zero() {
            out.put_i32(8);
            out.put_slice(&[0, 0, 0, 0]);
            out.put_u16(NUMERIC_POS);
            out.put_u16(dscale);
            return;
        }
        let top = self.top_exponent();
        let weight = top.div_euclid(4) as i16;
        out.reserve(12 + self.digits.len() / 2 + 2);
        out.put_i32(0); // field length, patched below
        out.put_u16(0); // ndigits, patched below
        out.put_i16(weight);
        out.put_u16(if self.negative {
            NUMERIC_NEG
        } else {
            NUMERIC_POS
        });
        out.put_u16(dscale);
        // The first group holds the digits down to the next multiple of 4 in the exponent.
        let mut in_group = top.rem_euclid(4) as usize + 1;
        let mut ndigits = 0u16;
        let mut kept = out.len();
        let mut rest = self.digits;
        while !rest.is_empty() {
            let take = in_group.min(rest.len());
            let mut group = 0u16;
            for &d in &rest[..take] {
                group = group * 10 + u16::from(d - b'0');
            }
            // A last, short group is padded on the right: 45 of 123.45 is 4500.
            for _ in take..in_group {
                group *= 10;
            }
            rest = &rest[take..];
            out.put_u16(group);
            ndigits += 1;
            if group != 0 {
                kept = out.len();
            }
            in_group = 4;
        }
        let trailing_zero_groups = (out.len() - kept) / 2;
        out.truncate(kept);
        let ndigits = ndigits - trailing_zero_groups as u16;
        out[field_start + 4..field_start + 6].copy_from_slice(&ndigits.to_be_bytes());
        let len = (out.len() - field_start - 4) as i32;
        out[field_start..field_start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Exact JSON number text: `123.45`, `-0.0012`, `1.50`, `12000` (scale -3).
    pub fn write_json(&self, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        if self.negative {
            w.write_char('-')?;
        }
        // Digits are ASCII by construction.
        let digits = std::str::from_utf8(self.digits).unwrap_or("0");
        let scale = i64::from(self.scale);
        let n = digits.len() as i64;
        if scale <= 0 {
            w.write_str(digits)?;
            if !self.is_zero() {
                for _ in 0..-scale {
                    w.write_char('0')?;
                }
            }
        } else if n > scale {
            let (int, frac) = digits.split_at((n - scale) as usize);
            write!(w, "{int}.{frac}")?;
        } else {
            w.write_str("0.")?;
            for _ in 0..scale - n {
                w.write_char('0')?;
            }
            w.write_str(digits)?;
        }
        Ok(())
    }
}

/// Splits a decimal's wire value into its scale and the unscaled varint bytes.
pub(super) fn split_decimal<'a>(ty: &CqlType, v: &'a [u8]) -> Result<(i32, &'a [u8]), Reject> {
    if v.is_empty() {
        return Err(empty_value(ty));
    }
    match v.split_first_chunk::<4>() {
        Some((scale, unscaled)) if !unscaled.is_empty() => {
            Ok((i32::from_be_bytes(*scale), unscaled))
        }
        _ => Err(Reject::malformed(
            ty,
            format_args!("{} bytes, a decimal needs at least 5", v.len()),
        )),
    }
}

/// Calls `f` with the decimal digits of a two's-complement big-endian varint.
pub(super) fn with_digits<R>(
    ty: &CqlType,
    varint: &[u8],
    scale: i32,
    f: impl FnOnce(&DecimalDigits<'_>) -> R,
) -> Result<R, Reject> {
    if varint.is_empty() {
        return Err(empty_value(ty));
    }
    if varint.len() <= 16 {
        let fill = if varint[0] & 0x80 != 0 { 0xff } else { 0 };
        let mut wide = [fill; 16];
        wide[16 - varint.len()..].copy_from_slice(varint);
        let value = i128::from_be_bytes(wide);
        let mut buf = [0u8; 40];
        let digits = u128_digits(value.unsigned_abs(), &mut buf);
        return Ok(f(&DecimalDigits {
            negative: value < 0,
            digits,
            scale,
        }));
    }
    if varint.len() > MAX_VARINT_BYTES {
        return Err(Reject::new(format!(
            "{ty} of {} bytes has more digits than PostgreSQL numeric allows",
            varint.len()
        )));
    }
    let big = BigInt::from_signed_bytes_be(varint);
    let digits = big.magnitude().to_str_radix(10);
    Ok(f(&DecimalDigits {
        negative: big.sign() == Sign::Minus,
        digits: digits.as_bytes(),
        scale,
    }))
}

/// Decimal digits of `v` at the end of `buf`.
fn u128_digits(mut v: u128, buf: &mut [u8; 40]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[at..]
}

/// A varint (`scale` 0) or a decimal's unscaled part as a binary `numeric` field.
pub(super) fn encode_numeric(
    ty: &CqlType,
    varint: &[u8],
    scale: i32,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    with_digits(ty, varint, scale, |d| {
        d.check_pg_range(ty)?;
        d.put_pg_binary(out);
        Ok(())
    })?
}

/// A varint or decimal as an exact JSON number, range-checked like a `numeric` column since
/// `jsonb` stores numbers as `numeric`.
pub(super) fn write_json_number(
    ty: &CqlType,
    varint: &[u8],
    scale: i32,
    w: &mut impl std::fmt::Write,
) -> Result<(), Reject> {
    with_digits(ty, varint, scale, |d| {
        d.check_pg_range(ty)?;
        d.write_json(w)
            .map_err(|_| Reject::new(format!("internal error: cannot format {ty}")))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(varint: &[u8], scale: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_numeric(&CqlType::Decimal, varint, scale, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn binary_layout_matches_postgres_examples() {
        // 123.45: ndigits 2, weight 0, positive, dscale 2, digits 123 4500.
        assert_eq!(
            numeric(&12345i32.to_be_bytes(), 2),
            [0, 0, 0, 12, 0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 0x11, 0x94]
        );
        // -1E+8 (scale -8): weight 2, one digit 1, trailing zero groups omitted.
        assert_eq!(
            numeric(&[0xff], -8),
            [0, 0, 0, 10, 0, 1, 0, 2, 0x40, 0, 0, 0, 0, 1]
        );
        // 0.00 keeps its display scale.
        assert_eq!(numeric(&[0], 2), [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2]);
        // 0.0012: weight -1, digit 12.
        assert_eq!(
            numeric(&[12], 4),
            [0, 0, 0, 10, 0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 12]
        );
    }

    #[test]
    fn limits_are_postgres_limits() {
        let mut out = BytesMut::new();
        let ty = CqlType::Decimal;
        assert!(encode_numeric(&ty, &[1], 16383, &mut out).is_ok());
        assert!(encode_numeric(&ty, &[1], 16384, &mut out).is_err());
        // weight 32767 is the last base-10000 position: 10^131071 fits, 10^131072 does not.
        assert!(encode_numeric(&ty, &[1], -131_071, &mut out).is_ok());
        assert!(encode_numeric(&ty, &[1], -131_072, &mut out).is_err());
        assert!(encode_numeric(&ty, &[1], i32::MIN, &mut out).is_err());
        // Zero with any negative scale is just zero.
        assert!(encode_numeric(&ty, &[0], i32::MIN, &mut out).is_ok());
    }

    #[test]
    fn json_text_is_exact() {
        let text = |v: &[u8], scale| {
            let mut s = String::new();
            write_json_number(&CqlType::Decimal, v, scale, &mut s).unwrap();
            s
        };
        assert_eq!(text(&12345i32.to_be_bytes(), 2), "123.45");
        assert_eq!(text(&150i32.to_be_bytes(), 2), "1.50");
        assert_eq!(text(&[0xf4], 4), "-0.0012");
        assert_eq!(text(&[12], -3), "12000");
        assert_eq!(text(&[0], -3), "0");
        assert_eq!(text(&[0], 3), "0.000");
        let big = -(BigInt::from(1u8) << 200u32);
        assert_eq!(
            text(&big.to_signed_bytes_be(), 30),
            format!("-{}", bigdecimal::BigDecimal::new(-big, 30).abs())
        );
    }
}
