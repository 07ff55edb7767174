//! `expansa audit`: the reads of customer data the API logged (who, when, the endpoint and its
//! query, the answer's status), newest first. The API's `GET /api/v1/audit` runs this same plan
//! and answers its JSON (docs/api.md, "Accounts, roles and sessions").

use crate::Format;
use expansa_store::{AuditEntry, AuditQuery, Store, MAX_AUDIT_LIMIT};

/// How many entries are listed when --limit is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// `expansa audit` flags (the store's are flattened beside them).
#[derive(clap::Args, Debug)]
pub(crate) struct AuditArgs {
    /// The first moment listed: a day (YYYY-MM-DD, from its midnight UTC) or an RFC 3339 instant.
    #[arg(long, value_name = "DAY|RFC3339", value_parser = since)]
    since: Option<jiff::Timestamp>,
    /// Only the reads of this user (by name).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Only the reads made with API keys of this name.
    #[arg(long, value_name = "NAME")]
    key: Option<String>,
    /// How many entries, the newest (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT, value_parser = limit)]
    limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// A validated listing: which entries and how they are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPlan {
    pub query: AuditQuery,
    pub format: Format,
}

impl AuditArgs {
    /// The plan; a user name is checked as the store checks it (a name it could never hold is
    /// a mistake, not an empty list).
    pub(crate) fn plan(self) -> Result<AuditPlan, String> {
        if let Some(user) = &self.user {
            expansa_store::check_user_name(user).map_err(|e| format!("--user: {e}"))?;
        }
        if self.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err("--key must not be empty".into());
        }
        Ok(AuditPlan {
            query: AuditQuery {
                since: self.since,
                user: self.user,
                key: self.key,
                limit: self.limit,
            },
            format: self.format,
        })
    }
}

/// Lists the entries of `plan` from `store`, printed in its format.
pub async fn run(plan: &AuditPlan, store: &Store) -> anyhow::Result<String> {
    let entries = store.audit_log(&plan.query).await?;
    Ok(render(&entries, plan.format))
}

/// The entries as JSON: `[{"id", "at", "actor", "method", "path", "status"}]`, newest first.
pub fn json(entries: &[AuditEntry]) -> serde_json::Value {
    entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "method": e.method,
                "path": e.path,
                "status": e.status,
            })
        })
        .collect()
}

/// The entries as a table, CSV or JSON (what the command prints).
pub fn render(entries: &[AuditEntry], format: Format) -> String {
    if format == Format::Json {
        return json(entries).to_string() + "\n";
    }
    let header = ["id", "at", "actor", "method", "path", "status"];
    let rows = entries.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.at.clone(),
            e.actor.clone(),
            e.method.clone(),
            e.path.clone(),
            e.status.to_string(),
        ]
    });
    match format {
        Format::Csv => expansa_ledger::csv_rows(&header, rows),
        _ => {
            let mut table = vec![header.map(String::from).to_vec()];
            table.extend(rows);
            expansa_movements::table(&table, &[true, false, false, false, false, true])
        }
    }
}

/// `--since`: a day (its midnight, UTC) or an RFC 3339 instant.
fn since(s: &str) -> Result<jiff::Timestamp, String> {
    let s = s.trim();
    if let Ok(day) = s.parse::<jiff::civil::Date>() {
        if s.len() == 10 {
            return day
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| format!("{s:?}: {e}"));
        }
    }
    s.parse::<jiff::Timestamp>().map_err(|_| {
        format!("{s:?}: expected a day (YYYY-MM-DD) or an RFC 3339 instant (2024-05-01T12:00:00Z)")
    })
}

/// `--limit N`: 1 to [`MAX_AUDIT_LIMIT`].
fn limit(s: &str) -> Result<usize, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a whole number of entries"))?;
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_AUDIT_LIMIT).contains(n))
        .ok_or_else(|| format!("{n}: from 1 to {MAX_AUDIT_LIMIT} entries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_day_or_an_instant() {
        assert_eq!(
            since("2024-05-01").unwrap().to_string(),
            "2024-05-01T00:00:00Z"
        );
        assert_eq!(
            since("2024-05-01T12:00:00-03:00").unwrap().to_string(),
            "2024-05-01T15:00:00Z"
        );
        assert!(since("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(since("2024-13-01").is_err());
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(limit("10").unwrap(), 10);
        assert!(limit("0").is_err());
        assert!(limit("-1").is_err());
        assert!(limit("10001").unwrap_err().contains("10000"));
        assert!(limit("99999999999999999999").is_err());
    }
}
