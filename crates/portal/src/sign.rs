//! The amendment document, its signature, and applying it: `POST /portal/{token}/amendments`
//! makes the PDF of a priced amendment and keeps its exact bytes; `GET
//! /portal/{token}/amendments/{id}.pdf` (and `{id}-invoice.pdf`) gives them back; `POST
//! /portal/{token}/amendments/{id}/sign` records the signature and applies the amendment as
//! one idempotent event, with its invoice numbered in the same transaction.

use crate::offer::{self, Wanted};
use crate::{json_body, open, param, refused, Params, Portal};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use expansa_api::ApiError;
use expansa_contracts::{contract, render_quote};
use expansa_documents::{amendment_pdf, invoice_pdf, Amendment, Invoice};
use expansa_ledger::{Book, Format};
use expansa_store::{
    constant_time_eq, Actor, Idempotency, PortalAmendment, PortalLink, PortalPdf, Signature,
    Signing,
};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// The longest full name, e-mail address and user agent kept, in characters.
pub const MAX_NAME: usize = 200;
pub const MAX_EMAIL: usize = 254;
pub const MAX_USER_AGENT: usize = 512;

/// The customer's display name.
fn customer_name(book: &Book, id: &str) -> String {
    book.customers
        .ids
        .find(id)
        .map(|c| book.customers.name.get(c as usize).to_string())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// The answer describing an amendment, for the page.
fn described(token: &str, a: &PortalAmendment) -> serde_json::Value {
    let base = format!("/portal/{token}/amendments/{}", a.id);
    json!({
        "id": a.id,
        "contract": a.contract_id,
        "sha256": a.sha256,
        "pdf": format!("{base}.pdf"),
        "created_at": a.created_at,
        "signed": a.signature.as_ref().map(|s| json!({
            "at": s.signed_at, "name": s.name, "email": s.email,
        })),
        "event": a.event,
        "invoice": a.invoice.as_ref().map(|(vendor, number, sha256)| json!({
            "vendor": vendor, "number": number, "sha256": sha256,
            "pdf": format!("{base}-invoice.pdf"),
        })),
    })
}

/// `POST /portal/{token}/amendments` with the quote endpoint's body: the amendment's PDF,
/// kept with its SHA-256; answers where to fetch it and the hash to sign.
pub(crate) async fn make(
    State(portal): State<Arc<Portal>>,
    axum::extract::Path(params): Params,
    Query(lang): Query<crate::Lang>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let link = open(&portal, &token).await?;
    portal.drafting_allowed(&link.id)?;
    let wanted: Wanted = json_body(&headers, &body)?;
    let locale = crate::locale_of(&lang, &headers);
    let (_, book) = portal.store.latest_book().await?;
    let today = expansa_commands::renewals::today();
    let (_, quote) = offer::price(&book, &link.customer_id, &wanted, today).map_err(refused)?;
    let before = contract(&book, &quote.contract, today).map_err(anyhow_error)?;
    let issued = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let name = |p: &str| offer::product_name(&book, p);
    let customer = customer_name(&book, &link.customer_id);
    // The reference printed is the amendment's id: drawn before the PDF is made.
    let reference = portal.store.new_portal_amendment_id()?;
    let pdf = amendment_pdf(&Amendment {
        vendor: &portal.vendor,
        customer_id: &link.customer_id,
        customer_name: &customer,
        reference: &reference,
        issued: &issued,
        before: &before,
        quote: &quote,
        product_name: &name,
        locale,
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let request = serde_json::to_string(&wanted).map_err(|e| ApiError::Internal(e.to_string()))?;
    let saved = portal
        .store
        .save_portal_amendment(
            &reference,
            &link,
            &quote.contract,
            &request,
            &render_quote(&quote, Format::Json),
            &pdf,
        )
        .await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(described(&token, &saved)),
    )
        .into_response())
}

fn anyhow_error(e: expansa_contracts::QuoteError) -> ApiError {
    ApiError::from(anyhow::Error::from(e))
}

/// The amendment `id` if it is the link's customer's (else 404: nothing of another customer).
async fn own(portal: &Portal, link: &PortalLink, id: &str) -> Result<PortalAmendment, ApiError> {
    portal
        .store
        .portal_amendment(id)
        .await?
        .filter(|a| a.customer_id == link.customer_id)
        .ok_or_else(|| ApiError::NotFound(format!("there is no amendment {id:?} on your page")))
}

/// `GET /portal/{token}/amendments/{id}.pdf` and `{id}-invoice.pdf`: the exact bytes kept.
pub(crate) async fn pdf(
    State(portal): State<Arc<Portal>>,
    axum::extract::Path(params): Params,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let link = open(&portal, &token).await?;
    let file = param(&params, "id");
    let (id, which) = match file.strip_suffix("-invoice.pdf") {
        Some(id) => (id, PortalPdf::Invoice),
        None => (
            file.strip_suffix(".pdf").unwrap_or(&file),
            PortalPdf::Amendment,
        ),
    };
    let amendment = own(&portal, &link, id).await?;
    let bytes = portal
        .store
        .portal_pdf(&amendment.id, which)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("amendment {id} has no invoice yet")))?;
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /portal/{token}/amendments/{id}/sign`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignBody {
    name: String,
    email: String,
    accept: bool,
    /// The SHA-256 of the PDF the customer was shown (hex): what they sign.
    sha256: String,
}

/// A full name: 2 to [`MAX_NAME`] characters, no control characters.
fn checked_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let n = name.chars().count();
    if !(2..=MAX_NAME).contains(&n) || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "type your full name (2 to {MAX_NAME} characters)"
        )));
    }
    Ok(name.to_string())
}

/// An e-mail address: `local@domain.tld`, at most [`MAX_EMAIL`] characters, no spaces.
fn checked_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let ok = email.chars().count() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain
                    .split_once('.')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        });
    // Also one the mail can be sent to: a signed amendment's PDFs go to it.
    if !ok || crate::deliver::check_address("e-mail", email).is_err() {
        return Err(ApiError::BadRequest(format!(
            "{email:?} is not an e-mail address (name@example.com, at most {MAX_EMAIL} characters)"
        )));
    }
    Ok(email.to_string())
}

/// Signs an amendment and applies it: the signature record (UTC time, name, e-mail, client
/// address, user agent, the SHA-256 of the PDF signed) goes into the event that applies it,
/// once: a second request (a double click, a retry) answers the first one's outcome.
pub(crate) async fn sign(
    State(portal): State<Arc<Portal>>,
    axum::extract::Path(params): Params,
    Query(lang): Query<crate::Lang>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let link = open(&portal, &token).await?;
    let b: SignBody = json_body(&headers, &body)?;
    let amendment = own(&portal, &link, &param(&params, "id")).await?;
    let same_document = constant_time_eq(
        b.sha256.trim().to_ascii_lowercase().as_bytes(),
        amendment.sha256.as_bytes(),
    );
    // A signed amendment's document sent again (a double click, a retry) answers its outcome,
    // whatever the attempts counted.
    if same_document && amendment.signature.is_some() {
        return Ok(signed(&token, &amendment, true));
    }
    portal.signing_allowed(&link.id)?;
    if !same_document {
        return Err(ApiError::Conflict(
            "the document you sign is not the one kept for this amendment (its SHA-256 differs): open it again"
                .into(),
        ));
    }
    if !b.accept {
        return Err(ApiError::BadRequest(
            "tick the box to accept the amendment".into(),
        ));
    }
    let name = checked_name(&b.name)?;
    let email = checked_email(&b.email)?;
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(MAX_USER_AGENT)
        .collect();
    let client_address = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(String::new, |ConnectInfo(peer)| peer.ip().to_string());
    // Priced again on today's book: what is applied must be what the PDF says.
    let (priced_at, book) = portal.store.latest_book().await?;
    let today = expansa_commands::renewals::today();
    let wanted: Wanted = serde_json::from_str(&amendment.request)
        .map_err(|e| ApiError::Internal(format!("amendment {}: {e}", amendment.id)))?;
    let quote = match offer::price(&book, &link.customer_id, &wanted, today) {
        Ok((_, quote)) if render_quote(&quote, Format::Json) == amendment.quote => quote,
        _ => {
            // Signed meanwhile by the same request sent twice: its outcome, not a refusal.
            if let Some(now) = portal.store.portal_amendment(&amendment.id).await? {
                if now.signature.is_some() {
                    return Ok(signed(&token, &now, true));
                }
            }
            return Err(ApiError::Conflict(format!(
                "amendment {} no longer matches the contract as it is today (the day, a price or \
                 the lines changed since the document was made): make the document again",
                amendment.id
            )));
        }
    };
    let signature = Signature {
        signed_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        name,
        email,
        client_address,
        user_agent,
    };
    let actor = Actor {
        who: format!("portal {} (customer {})", link.id, link.customer_id),
        why: format!(
            "amendment {} {signature}; PDF sha256 {}",
            amendment.id, amendment.sha256
        ),
    };
    let customer = customer_name(&book, &link.customer_id);
    let names = |p: &str| offer::product_name(&book, p);
    // The invoice in the customer's language, as the amendment's document.
    let locale = crate::locale_of(&lang, &headers);
    let make_invoice = |number: i64, event: i64| {
        invoice_pdf(&Invoice {
            vendor: &portal.vendor,
            number,
            customer_id: &link.customer_id,
            customer_name: &customer,
            amendment: &amendment.id,
            event,
            issued: &signature.signed_at,
            quote: &quote,
            product_name: &names,
            locale,
        })
        .map_err(|e| e.to_string())
    };
    let queued = portal.deliveries.queued(&signature.email);
    let signing = Signing {
        amendment: &amendment.id,
        signature: &signature,
        vendor: &portal.vendor,
        invoice: &make_invoice,
        deliveries: &queued,
    };
    let key = Idempotency::new(
        format!("portal:{}", amendment.id),
        amendment.sha256.as_bytes(),
    );
    let outcome = portal
        .store
        .apply_quote_signed(&quote, priced_at, &actor, &key, Some(&signing))
        .await?;
    let now = portal
        .store
        .portal_amendment(&amendment.id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("amendment {} vanished", amendment.id)))?;
    Ok(signed(&token, &now, outcome.replayed))
}

fn signed(token: &str, a: &PortalAmendment, replayed: bool) -> Response {
    let mut body = described(token, a);
    body["replayed"] = json!(replayed);
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
