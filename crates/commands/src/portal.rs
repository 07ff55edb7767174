//! `expansa portal link|list|revoke`: the links staff make for a customer's own page
//! (docs/portal.md). A link's token is printed once and stored hashed.

use crate::args::BookArgs;
use expansa_store::{Store, MAX_PORTAL_DAYS};

/// `expansa portal` actions (each with the store's flags).
#[derive(clap::Subcommand, Debug)]
pub(crate) enum PortalAction {
    /// Make a link to a customer's portal page; its token is printed once.
    Link {
        #[command(flatten)]
        book: BookArgs,
        /// The customer the page shows (and the only one it may read or change).
        #[arg(long)]
        customer: String,
        /// Days the link lives (1 to 90).
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Who makes it (kept with the link; default: the user running the command).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// List the links (never their tokens), newest first.
    List {
        #[command(flatten)]
        book: BookArgs,
    },
    /// Tell whether FILE is a document the portal kept: a signed amendment (who signed it,
    /// when, from where, the event that applied it) or its invoice; exit 1 when it is not.
    Verify {
        #[command(flatten)]
        book: BookArgs,
        /// The PDF to check (at most 64 MiB).
        #[arg(value_name = "FILE.pdf")]
        file: std::path::PathBuf,
    },
    /// Revoke a link, by its token or its id (the part before the dot): at once.
    Revoke {
        #[command(flatten)]
        book: BookArgs,
        /// The link's token or id.
        #[arg(value_name = "TOKEN-or-ID")]
        link: String,
    },
}

/// A validated `portal` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortalPlan {
    Link {
        customer: String,
        days: u32,
        by: String,
    },
    List,
    Revoke {
        link: String,
    },
    Verify {
        file: std::path::PathBuf,
    },
}

/// The largest file `portal verify` reads.
pub const MAX_VERIFY_BYTES: u64 = 64 << 20;

impl PortalAction {
    /// The store's flags and the plan, its sizes checked before the store is opened.
    pub(crate) fn plan(self) -> Result<(BookArgs, PortalPlan), String> {
        Ok(match self {
            PortalAction::Link {
                book,
                customer,
                days,
                by,
            } => {
                if !(1..=MAX_PORTAL_DAYS).contains(&days) {
                    return Err(format!(
                        "--days {days}: a portal link lives 1 to {MAX_PORTAL_DAYS} days"
                    ));
                }
                if customer.trim().is_empty() {
                    return Err("--customer must not be empty".into());
                }
                let by = by
                    .or_else(|| std::env::var("USER").ok())
                    .filter(|b| !b.trim().is_empty())
                    .unwrap_or_else(|| "cli".into());
                (book, PortalPlan::Link { customer, days, by })
            }
            PortalAction::List { book } => (book, PortalPlan::List),
            PortalAction::Revoke { book, link } => (book, PortalPlan::Revoke { link }),
            PortalAction::Verify { book, file } => (book, PortalPlan::Verify { file }),
        })
    }
}

/// Runs a `portal` command on `store`; returns what it prints.
pub async fn run(plan: &PortalPlan, store: &Store) -> anyhow::Result<String> {
    Ok(match plan {
        PortalPlan::Link { customer, days, by } => {
            let (link, token) = store.create_portal_link(customer, *days, by).await?;
            format!(
                "/portal/{token}/\n(the page of customer {customer} until {}: add the server's \
                 address in front, e.g. https://HOST/portal/{token}/; shown once; revoke it with \
                 `expansa portal revoke {}`)\n",
                link.expires_at, link.id
            )
        }
        PortalPlan::List => {
            let links = store.portal_links().await?;
            let mut rows = vec![[
                "id",
                "customer",
                "created by",
                "created",
                "expires",
                "revoked",
            ]
            .map(String::from)
            .to_vec()];
            for l in links {
                rows.push(vec![
                    l.id,
                    l.customer_id,
                    l.created_by,
                    l.created_at,
                    l.expires_at,
                    l.revoked_at.unwrap_or_default(),
                ]);
            }
            expansa_movements::table(&rows, &[false; 6])
        }
        PortalPlan::Verify { file } => verify(file, store).await?,
        PortalPlan::Revoke { link } => {
            let revoked = store.revoke_portal_link(link).await?;
            format!(
                "revoked portal link {} (customer {})\n",
                revoked.id, revoked.customer_id
            )
        }
    })
}

/// What `portal verify FILE` prints: the kept document whose SHA-256 is the file's.
async fn verify(file: &std::path::Path, store: &Store) -> anyhow::Result<String> {
    use std::io::Read;
    let opened = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let mut bytes = Vec::new();
    opened
        .take(MAX_VERIFY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    if bytes.len() as u64 > MAX_VERIFY_BYTES {
        anyhow::bail!(
            "{}: larger than {MAX_VERIFY_BYTES} bytes: no document the portal makes is",
            file.display()
        );
    }
    let sha256 = expansa_store::sha256_bytes_hex(&bytes);
    let found = store.portal_amendments_by_sha256(&sha256).await?;
    let Some(a) = found.first() else {
        anyhow::bail!(
            "{}: no document the portal kept has this SHA-256 ({sha256}): it is not one of its \
             amendments or invoices, or its bytes were changed",
            file.display()
        );
    };
    let invoice = a
        .invoice
        .as_ref()
        .filter(|(_, _, invoice_sha)| *invoice_sha == sha256);
    let Some(signed) = &a.signature else {
        anyhow::bail!(
            "{}: amendment {} of contract {} (customer {}), made {}: NOT signed (SHA-256 {sha256})",
            file.display(),
            a.id,
            a.contract_id,
            a.customer_id,
            a.created_at
        );
    };
    let what = match invoice {
        Some((vendor, number, _)) => {
            format!("invoice {vendor} no. {number}, billing amendment {}", a.id)
        }
        None => format!("signed amendment {}", a.id),
    };
    Ok(format!(
        "{}: {what} of contract {} (customer {}); SHA-256 {sha256}\n\
         {signed}; applied by event {}\n",
        file.display(),
        a.contract_id,
        a.customer_id,
        a.event.map_or("-".into(), |e| e.to_string()),
    ))
}
