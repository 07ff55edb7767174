//! An exact decimal of up to 17 significant digits in 8 bytes, for the millions of prices and
//! quantities a book holds.

use rust_decimal::Decimal;
use std::fmt;

/// Bits of the signed mantissa; the remaining 5 hold the scale (0..=28).
const MANTISSA_BITS: u32 = 59;

/// An exact decimal stored in 8 bytes: a 59-bit signed mantissa and a scale up to 28.
/// Every decimal of at most 17 significant digits fits; [`SmallDecimal::new`] says when one
/// does not.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SmallDecimal([u32; 2]);

impl SmallDecimal {
    /// Most significant digits always representable.
    pub const DIGITS: u32 = 17;

    pub const ZERO: SmallDecimal = SmallDecimal([0, 0]);

    /// One (scale 0).
    pub const ONE: SmallDecimal = SmallDecimal([1, 0]);

    /// Packs `value`; `None` when its mantissa needs more than 59 bits.
    pub fn new(value: Decimal) -> Option<SmallDecimal> {
        let m = value.mantissa();
        let limit = 1i128 << (MANTISSA_BITS - 1);
        if m >= limit || m < -limit {
            return None;
        }
        let bits = ((u64::from(value.scale())) << MANTISSA_BITS)
            | ((m as i64 as u64) & ((1u64 << MANTISSA_BITS) - 1));
        Some(SmallDecimal([bits as u32, (bits >> 32) as u32]))
    }

    /// The exact value.
    pub fn get(self) -> Decimal {
        let bits = u64::from(self.0[0]) | (u64::from(self.0[1]) << 32);
        let scale = (bits >> MANTISSA_BITS) as u32;
        // Sign-extend the 59-bit mantissa.
        let m = ((bits << (64 - MANTISSA_BITS)) as i64) >> (64 - MANTISSA_BITS);
        Decimal::new(m, scale)
    }
}

impl From<SmallDecimal> for Decimal {
    fn from(v: SmallDecimal) -> Decimal {
        v.get()
    }
}

impl fmt::Debug for SmallDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl fmt::Display for SmallDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn round_trips_and_refuses_what_does_not_fit() {
        for s in [
            "0",
            "1",
            "-1",
            "59.90",
            "0.0000000000000000000000000001",
            "99999999999999999",
            "-99999999999999999",
            "12.5",
        ] {
            let d = Decimal::from_str(s).unwrap();
            let packed = SmallDecimal::new(d).unwrap();
            assert_eq!(packed.get(), d, "{s}");
            assert_eq!(packed.get().scale(), d.scale(), "{s} keeps its scale");
        }
        assert!(SmallDecimal::new(Decimal::from_str("999999999999999999").unwrap()).is_none());
        assert_eq!(SmallDecimal::ONE.get(), Decimal::ONE);
        assert_eq!(std::mem::size_of::<SmallDecimal>(), 8);
    }

    proptest::proptest! {
        #[test]
        fn any_17_digit_value_round_trips(m in -99_999_999_999_999_999i64..=99_999_999_999_999_999, scale in 0u32..=28) {
            let d = Decimal::new(m, scale);
            proptest::prop_assert_eq!(SmallDecimal::new(d).unwrap().get(), d);
        }
    }
}
