//! Amounts as sources write them: decimal text, or integer minor units (Stripe's cents).

use expansa_ledger::Currency;
use rust_decimal::Decimal;

/// Reads a decimal written with a point (`1234.56`, `-3`, `1e2` is refused); `Err` says why.
pub fn decimal(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    if t.is_empty()
        || t.len() > 40
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
    {
        return Err("is not a decimal number (digits with a point, such as 1234.56)".into());
    }
    let d = t.parse::<Decimal>().map_err(|_| {
        let digits = t.bytes().filter(u8::is_ascii_digit).count();
        if digits > 28 && t.bytes().filter(|b| *b == b'.').count() <= 1 {
            "is too large: a decimal keeps at most 28 digits".to_string()
        } else {
            "is not a decimal number (digits with a point, such as 1234.56)".to_string()
        }
    })?;
    // Never rounded: a value whose decimal places the decimal cannot keep (it holds 28 at
    // most, fewer for a large number) is refused, not read as a neighbour.
    let frac = t.split_once('.').map_or("", |(_, f)| f);
    let places = frac.trim_end_matches('0').len() as u32;
    if places > d.scale() {
        return Err(
            "has more decimal places than are kept exactly (28 digits in all at most)".into(),
        );
    }
    Ok(d)
}

/// An amount in the currency's minor units (`2999` USD cents) as units (`29.99`), by the
/// currency's ISO 4217 exponent: `1000` JPY, a zero-decimal currency, stays `1000`. Stripe
/// writes amounts so (<https://docs.stripe.com/currencies#zero-decimal>); its
/// `unit_amount_decimal` may carry decimals of a cent (`2999.5`), kept exactly.
pub fn from_minor_units(text: &str, currency: Currency) -> Result<Decimal, String> {
    shift_minor(decimal(text)?, currency)
}

/// [`from_minor_units`] of a decimal already read.
pub fn shift_minor(d: Decimal, currency: Currency) -> Result<Decimal, String> {
    let mut d = d;
    let scale = d.scale() + currency.minor_units();
    if scale > 28 {
        return Err("has too many decimal places".into());
    }
    d.set_scale(scale).map_err(|e| e.to_string())?;
    Ok(d.normalize())
}

/// A currency code as sources write it (`usd`, `BRL`), checked against ISO 4217.
pub fn currency(text: &str) -> Result<Currency, String> {
    Currency::from_code(&text.trim().to_ascii_uppercase())
        .ok_or_else(|| "is not an ISO 4217 currency code".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units() {
        let usd = currency("usd").unwrap();
        let jpy = currency("JPY").unwrap();
        assert_eq!(from_minor_units("2999", usd).unwrap().to_string(), "29.99");
        assert_eq!(from_minor_units("150000", usd).unwrap().to_string(), "1500");
        assert_eq!(from_minor_units("1000", jpy).unwrap().to_string(), "1000");
        assert_eq!(
            from_minor_units("2999.5", usd).unwrap().to_string(),
            "29.995"
        );
        assert!(from_minor_units("12,5", usd).is_err());
        assert!(decimal("1.000000000000000000000000000001")
            .unwrap_err()
            .starts_with("has more decimal places than are kept exactly"));
        assert_eq!(
            decimal("1.5000000000000000000000000000000")
                .unwrap()
                .to_string(),
            "1.5000000000000000000000000000"
        );
        assert_eq!(
            decimal("123456789012345678901234567890").unwrap_err(),
            "is too large: a decimal keeps at most 28 digits"
        );
        assert!(decimal("79228162514264337593543950335").is_ok());
        assert!(decimal("7922816251426433759354395033.51").is_err());
        assert!(currency("XXY").is_err());
    }
}
