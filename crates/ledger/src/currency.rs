//! ISO 4217 currency codes and their minor units.

use std::fmt;
use std::str::FromStr;

/// An active ISO 4217 currency.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// Active ISO 4217 codes (list 1, 2024) with their minor units; all others have two.
const ZERO_DP: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DP: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const FOUR_DP: &[&str] = &["CLF", "UYW"];
const TWO_DP: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
    "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
    "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR",
    "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU",
    "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

impl Currency {
    /// The Brazilian real, expansa's default reporting currency.
    pub const BRL: Currency = Currency {
        code: *b"BRL",
        minor_units: 2,
    };

    /// Looks a code up (case-insensitive); `None` for a code that is not an active ISO 4217 code.
    pub fn from_code(code: &str) -> Option<Currency> {
        if code.len() != 3 {
            return None;
        }
        let mut bytes = [0u8; 3];
        bytes.copy_from_slice(code.as_bytes());
        bytes.make_ascii_uppercase();
        let upper = std::str::from_utf8(&bytes).ok()?;
        let tables: [(&[&str], u8); 4] = [(TWO_DP, 2), (ZERO_DP, 0), (THREE_DP, 3), (FOUR_DP, 4)];
        tables.iter().find_map(|(table, minor_units)| {
            table.contains(&upper).then_some(Currency {
                code: bytes,
                minor_units: *minor_units,
            })
        })
    }

    /// Whether `text` is this currency's code, in any case (no allocation, no table search).
    pub fn is_code(&self, text: &str) -> bool {
        text.as_bytes().eq_ignore_ascii_case(&self.code)
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("codes are ASCII")
    }

    /// Decimal places of the currency's minor unit (2 for BRL, 0 for JPY).
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }

    /// The usual symbol, where one is well known and unambiguous enough for a report.
    pub fn symbol(&self) -> Option<&'static str> {
        Some(match self.code() {
            "BRL" => "R$",
            "USD" => "US$",
            "EUR" => "€",
            "GBP" => "£",
            "JPY" => "¥",
            _ => return None,
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a text is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCurrency;

impl fmt::Display for UnknownCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown ISO 4217 currency code")
    }
}

impl std::error::Error for UnknownCurrency {}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Currency, UnknownCurrency> {
        Currency::from_code(s).ok_or(UnknownCurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        assert_eq!(Currency::from_code("brl"), Some(Currency::BRL));
        assert_eq!(Currency::from_code("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_units(), 3);
        assert_eq!(Currency::from_code("XYZ"), None);
        assert_eq!(Currency::from_code("US"), None);
        assert_eq!(Currency::from_code("USDX"), None);
    }

    #[test]
    fn no_code_listed_twice() {
        let mut all: Vec<&str> = [TWO_DP, ZERO_DP, THREE_DP, FOUR_DP].concat();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
