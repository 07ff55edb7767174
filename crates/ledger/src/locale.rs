//! Money as people read it: `R$ 1.234,56` in Brazilian Portuguese, `R$1,234.56` in English.

use crate::{Currency, Money};
use std::fmt;
use std::str::FromStr;

/// The language of human-readable output.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Locale {
    /// Brazilian Portuguese: `R$ 1.234,56`, `-R$ 10,00`.
    #[default]
    PtBr,
    /// English: `R$1,234.56`, `-R$10.00`.
    En,
}

impl Locale {
    /// The locale named by a POSIX locale value such as `pt_BR.UTF-8` or `en_US`; `None` when
    /// it names neither language.
    pub fn from_posix(value: &str) -> Option<Locale> {
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("pt") {
            Some(Locale::PtBr)
        } else if lower.starts_with("en")
            || lower == "c"
            || lower.starts_with("c.")
            || lower == "posix"
        {
            Some(Locale::En)
        } else {
            None
        }
    }

    /// Formats an amount rounded to the currency's minor unit, with its symbol (or code).
    pub fn money(self, amount: Money, currency: Currency) -> String {
        let rounded = amount.round_dp(currency.minor_units());
        let text = rounded.abs().to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let (group, point) = match self {
            Locale::PtBr => ('.', ','),
            Locale::En => (',', '.'),
        };
        let mut out = String::with_capacity(text.len() + 8);
        if rounded.is_sign_negative() && !rounded.is_zero() {
            out.push('-');
        }
        match (self, currency.symbol()) {
            (Locale::PtBr, Some(sym)) => {
                out.push_str(sym);
                out.push(' ');
            }
            (Locale::En, Some(sym)) => out.push_str(sym),
            (_, None) => {
                out.push_str(currency.code());
                out.push(' ');
            }
        }
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push(group);
            }
            out.push(c);
        }
        if !frac.is_empty() {
            out.push(point);
            out.push_str(frac);
        }
        out
    }

    /// The BCP 47 tag (`pt-BR`, `en`).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::PtBr => "pt-BR",
            Locale::En => "en",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Locale, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "pt-br" | "pt" => Ok(Locale::PtBr),
            "en" | "en-us" | "en-gb" => Ok(Locale::En),
            _ => Err(format!("unknown locale {s:?} (expected pt-BR or en)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn m(s: &str) -> Money {
        Money::from_decimal(Decimal::from_str(s).unwrap())
    }

    #[test]
    fn brazilian_and_english() {
        let brl = Currency::BRL;
        assert_eq!(Locale::PtBr.money(m("1234.555"), brl), "R$ 1.234,56");
        assert_eq!(Locale::En.money(m("1234.555"), brl), "R$1,234.56");
        assert_eq!(Locale::PtBr.money(m("-10"), brl), "-R$ 10,00");
        assert_eq!(Locale::En.money(m("1234567.1"), brl), "R$1,234,567.10");
        assert_eq!(Locale::En.money(m("-0.001"), brl), "R$0.00");
        assert_eq!(Locale::En.money(m("999"), brl), "R$999.00");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Locale::En.money(m("1234.5"), jpy), "¥1,235");
        let chf = Currency::from_code("CHF").unwrap();
        assert_eq!(Locale::PtBr.money(m("5"), chf), "CHF 5,00");
    }

    #[test]
    fn parses_tags() {
        assert_eq!("pt-BR".parse::<Locale>(), Ok(Locale::PtBr));
        assert_eq!("en".parse::<Locale>(), Ok(Locale::En));
        assert!("fr".parse::<Locale>().is_err());
        assert_eq!(Locale::from_posix("pt_BR.UTF-8"), Some(Locale::PtBr));
        assert_eq!(Locale::from_posix("C.UTF-8"), Some(Locale::En));
        assert_eq!(Locale::from_posix("fr_FR.UTF-8"), None);
        assert_eq!(Locale::from_posix("C"), Some(Locale::En));
    }
}

/// How a report is rendered: a table for people (in a locale), JSON or CSV for programs. Every
/// renderer takes this one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table(Locale),
    Json,
    Csv,
}

/// Appends one CSV field to `out`, quoted (RFC 4180) when it holds a comma, a quote or a line
/// break.
pub fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A header and rows as a CSV document, fields quoted where they need it.
pub fn csv_rows<R: AsRef<[String]>>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String {
    let mut out = header.join(",") + "\n";
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, cell);
        }
        out.push('\n');
    }
    out
}
