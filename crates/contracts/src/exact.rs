//! Exact decimal arithmetic for quotes: products, quotients and sums formed on unbounded
//! integers and rounded once, so that no intermediate step loses a digit or overflows
//! silently. `rust_decimal`'s own operators either panic on overflow or, when a product or
//! sum needs more than 96 bits, drop digits to fit; neither is acceptable for a price.
//!
//! Every function answers `None` when the rounded result does not fit a [`Decimal`]; the
//! caller turns that into a [`crate::QuoteError`] naming what was being priced.

use expansa_ledger::Decimal;

/// An unsigned integer of any size: little-endian base-2^32 limbs, no trailing zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn to_u128(&self) -> Option<u128> {
        if self.0.len() > 4 {
            return None;
        }
        Some(
            self.0
                .iter()
                .rev()
                .fold(0u128, |acc, &l| (acc << 32) | u128::from(l)),
        )
    }

    fn mul_u32(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn mul_u128(&mut self, m: u128) {
        let mut out = Big(Vec::new());
        for (shift, limb) in Big::from_u128(m).0.into_iter().enumerate() {
            let mut part = self.clone();
            part.mul_u32(limb);
            if !part.0.is_empty() {
                let mut shifted = vec![0; shift];
                shifted.extend(part.0);
                part.0 = shifted;
            }
            out.add(&part);
        }
        *self = out;
    }

    fn add(&mut self, other: &Big) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        let mut carry = 0u64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = u64::from(*limb) + u64::from(other.0.get(i).copied().unwrap_or(0)) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    /// Floor division by `d` (> 0), in place.
    fn div_small(&mut self, d: u64) {
        let mut rem = 0u128;
        for limb in self.0.iter_mut().rev() {
            let cur = (rem << 32) | u128::from(*limb);
            *limb = (cur / u128::from(d)) as u32;
            rem = cur % u128::from(d);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
}

/// `Π factors x num / den`, rounded half away from zero to `dp` places, exactly (one rounding,
/// after the whole product). `None` when `den` is zero, `dp` exceeds 28 or the result does
/// not fit a [`Decimal`].
pub(crate) fn product(factors: &[Decimal], num: u128, den: u64, dp: u32) -> Option<Decimal> {
    if den == 0 || dp > Decimal::MAX_SCALE {
        return None;
    }
    let negative = factors
        .iter()
        .filter(|f| f.is_sign_negative() && !f.is_zero())
        .count()
        % 2
        == 1;
    // value = N / D with N = Π |mantissa| x num x 10^dp and D = den x 10^Σ scale; the result
    // in units of 10^-dp is round(N / D) = floor((floor(2N / D) + 1) / 2) (floors compose).
    let mut n = Big::from_u128(num);
    let mut scale = 0u32;
    for f in factors {
        n.mul_u128(f.mantissa().unsigned_abs());
        scale += f.scale();
    }
    for _ in 0..dp {
        n.mul_u32(10);
    }
    n.mul_u32(2);
    n.div_small(den);
    while scale >= 19 {
        n.div_small(10_000_000_000_000_000_000);
        scale -= 19;
    }
    n.div_small(10u64.pow(scale));
    n.add(&Big::from_u128(1));
    n.div_small(2);
    let units = i128::try_from(n.to_u128()?).ok()?;
    let mut d =
        Decimal::try_from_i128_with_scale(if negative { -units } else { units }, dp).ok()?;
    d.rescale(dp);
    Some(d)
}

/// `Π factors x num / den` to as many places (at most 28) as fit a [`Decimal`], rounded half
/// away from zero once, trailing zeros dropped: exact whenever the quotient terminates within
/// 28 places. `None` when even its integer part does not fit.
pub(crate) fn quotient(factors: &[Decimal], num: u128, den: u64) -> Option<Decimal> {
    (0..=Decimal::MAX_SCALE)
        .rev()
        .find_map(|dp| product(factors, num, den, dp))
        .map(|d| d.normalize())
}

/// `a + b`, exact: `None` when the sum needs more than 96 bits at the larger scale even with
/// its trailing zeros dropped.
pub(crate) fn add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let scale = a.scale().max(b.scale());
    let aligned = |d: Decimal| {
        d.mantissa()
            .checked_mul(10i128.checked_pow(scale - d.scale())?)
    };
    let mut sum = aligned(a)?.checked_add(aligned(b)?)?;
    let mut scale = scale;
    while scale > 0 && sum % 10 == 0 && Decimal::try_from_i128_with_scale(sum, scale).is_err() {
        sum /= 10;
        scale -= 1;
    }
    Decimal::try_from_i128_with_scale(sum, scale).ok()
}

/// `a - b`, exact (see [`add`]).
pub(crate) fn sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    add(a, -b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn products_round_once_half_away_from_zero() {
        assert_eq!(product(&[dec("0.01")], 1, 2, 2), Some(dec("0.01")));
        assert_eq!(product(&[dec("-0.01")], 1, 2, 2), Some(dec("-0.01")));
        assert_eq!(product(&[dec("0.03")], 1, 2, 2), Some(dec("0.02")));
        assert_eq!(
            product(&[dec("398.45")], 1179, 1460, 2),
            Some(dec("321.76"))
        );
        assert_eq!(product(&[dec("12")], 1, 1, 2).unwrap().to_string(), "12.00");
        assert_eq!(
            product(&[dec("1")], 1, 3, 28).unwrap().to_string(),
            format!("0.{}", "3".repeat(28))
        );
        // Two 96-bit mantissas: the product needs 192 bits before the scale comes off.
        let a = dec("7922816251426.4337593543950335");
        assert_eq!(
            product(&[a, a], 1, 1, 2),
            Some(dec("62771017353866807638357894.23"))
        );
        // Beyond the range: refused, not truncated.
        assert_eq!(product(&[Decimal::MAX, dec("2")], 1, 1, 0), None);
        assert_eq!(product(&[Decimal::MAX], 1, 1, 0), Some(Decimal::MAX));
        assert_eq!(product(&[dec("1")], 1, 0, 2), None);
    }

    #[test]
    fn quotients_keep_every_digit_that_fits() {
        assert_eq!(
            quotient(&[dec("420.00"), dec("100")], 12, 1200),
            Some(dec("420"))
        );
        assert_eq!(
            quotient(&[dec("100")], 12, 7).unwrap().to_string(),
            "171.42857142857142857142857143"
        );
        assert_eq!(quotient(&[Decimal::MAX], 1, 1), Some(Decimal::MAX));
        assert_eq!(quotient(&[Decimal::MAX], 2, 1), None);
    }

    #[test]
    fn sums_are_exact_or_refused() {
        assert_eq!(add(dec("1.5"), dec("2.25")), Some(dec("3.75")));
        assert_eq!(sub(dec("1"), dec("2.5")), Some(dec("-1.5")));
        assert_eq!(add(Decimal::MAX, dec("1")), None);
        // 0.1 + 79228162514264337593543950334 would need 30 digits: refused, not rounded.
        assert_eq!(add(dec("0.1"), dec("79228162514264337593543950334")), None);
        // Aligned at scale 1 the sum needs 97 bits; its trailing zero comes off exactly.
        let big = dec("79228162514264337593543950330");
        assert_eq!(add(big, dec("0.0")).map(|d| d.scale()), Some(0));
        assert_eq!(add(big, dec("0.0")), Some(big));
    }
}
