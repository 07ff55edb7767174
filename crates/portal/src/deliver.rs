//! What a signed amendment sends (docs/portal.md, "Deliveries"): both PDFs by e-mail (SMTP with
//! lettre, STARTTLS when the server offers it) to the signer and to the finance address, and
//! the provisioning notice POSTed to the vendor's URL, signed with HMAC-SHA256 of the
//! timestamped body. Each delivery is queued in the transaction that applies the amendment
//! (so none is lost when a server or a mail server is down); a worker tries the due ones every
//! second, logs every attempt, and tries a failed one again after 2, 4, 8 ... seconds (at most
//! an hour apart), until it is sent.

use expansa_store::{Delivery, PortalAmendment, PortalPdf, Store};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between two attempts at one delivery.
pub const MAX_BACKOFF_SECONDS: i64 = 3600;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The header carrying the webhook's signature: `t=UNIX,v1=HEX`.
pub const SIGNATURE_HEADER: &str = "expansa-signature";

/// An SMTP server: `smtp://HOST:PORT` (port 25 when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    /// The sender's address.
    pub from: String,
}

impl Smtp {
    /// The server of `smtp://HOST[:PORT]`, sending as `from`.
    pub fn parse(url: &str, from: &str) -> Result<Smtp, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("--smtp {url:?}: expected smtp://HOST[:PORT]"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse().map_err(|_| {
                    format!("--smtp {url:?}: the port is not a number from 1 to 65535")
                })?,
            ),
            None => (rest, 25),
        };
        if host.is_empty() || port == 0 {
            return Err(format!("--smtp {url:?}: expected smtp://HOST[:PORT]"));
        }
        check_address("--mail-from", from)?;
        Ok(Smtp {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            from: from.to_string(),
        })
    }
}

/// Whether `address` is one the mail can be sent to (as lettre reads it); `what` names it in
/// the error.
pub fn check_address(what: &str, address: &str) -> Result<(), String> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("{what} {address:?}: not an e-mail address ({e})"))
}

/// Where the vendor's systems hear of an amendment, and the secret its notices are signed with.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({}, secret hidden)", self.url)
    }
}

impl Webhook {
    /// The notice URL (http or https) and the secret read from its file (its first line).
    pub fn load(url: &str, secret_file: &std::path::Path) -> Result<Webhook, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2000 {
            return Err(format!(
                "--provisioning-url {url:?}: an http:// or https:// URL of at most 2000 characters"
            ));
        }
        url.parse::<hyper::Uri>()
            .map_err(|e| format!("--provisioning-url {url:?}: {e}"))?;
        let text = std::fs::read_to_string(secret_file)
            .map_err(|e| format!("--provisioning-secret-file {}: {e}", secret_file.display()))?;
        let secret = text.lines().next().unwrap_or_default().trim().to_string();
        if secret.len() < 16 {
            return Err(format!(
                "--provisioning-secret-file {}: the secret (its first line) must have 16 characters or more",
                secret_file.display()
            ));
        }
        Ok(Webhook {
            url: url.to_string(),
            secret,
        })
    }
}

/// What a signed amendment sends.
#[derive(Clone, Debug, Default)]
pub struct Deliveries {
    pub smtp: Option<Smtp>,
    /// The finance address that gets both PDFs too.
    pub finance: Option<String>,
    pub webhook: Option<Webhook>,
}

impl Deliveries {
    /// The deliveries to queue for an amendment signed by `signer` (an e-mail address).
    pub(crate) fn queued(&self, signer: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.smtp.is_some() {
            out.push(("mail", signer.to_string()));
            if let Some(finance) = self
                .finance
                .as_ref()
                .filter(|f| !f.eq_ignore_ascii_case(signer))
            {
                out.push(("mail", finance.clone()));
            }
        }
        if let Some(w) = &self.webhook {
            out.push(("webhook", w.url.clone()));
        }
        out
    }
}

/// The HMAC-SHA256 signature header of `body` sent at `timestamp` (Unix seconds):
/// `t=TIMESTAMP,v1=HEX`, where HEX signs `TIMESTAMP.BODY`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Starts the worker that sends the due deliveries (within a Tokio runtime; none without one,
/// or when nothing is configured).
pub(crate) fn spawn(store: Store, deliveries: Arc<Deliveries>, vendor: String) {
    let nothing = deliveries.smtp.is_none() && deliveries.webhook.is_none();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if nothing {
        return;
    }
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let due = match store.due_deliveries(now_unix(), 20).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!("portal deliveries: cannot read the queue: {e}");
                    continue;
                }
            };
            for d in due {
                // Taken for two minutes, so another server on the store does not send it too.
                match store
                    .claim_delivery(d.id, d.next_unix, now_unix() + 120)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!("portal deliveries: cannot claim {}: {e}", d.id);
                        continue;
                    }
                }
                let outcome = match tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    attempt(&store, &deliveries, &vendor, &d),
                )
                .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
                };
                let backoff = 2i64
                    .saturating_pow(u32::try_from(d.attempts + 1).unwrap_or(u32::MAX).min(20))
                    .min(MAX_BACKOFF_SECONDS);
                let (ok, detail) = match outcome {
                    Ok(detail) => (true, detail),
                    Err(e) => {
                        tracing::warn!(
                            delivery = d.id,
                            kind = d.kind,
                            "portal delivery failed: {e}"
                        );
                        (false, e)
                    }
                };
                if let Err(e) = store
                    .delivery_attempted(d.id, ok, &detail, now_unix() + backoff)
                    .await
                {
                    tracing::warn!("portal deliveries: cannot log attempt at {}: {e}", d.id);
                }
            }
        }
    });
}

/// One attempt at `d`: what was done, or why it failed.
async fn attempt(
    store: &Store,
    deliveries: &Deliveries,
    vendor: &str,
    d: &Delivery,
) -> Result<String, String> {
    let amendment = store
        .portal_amendment(&d.amendment_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("amendment {} is not in the store", d.amendment_id))?;
    match d.kind.as_str() {
        "mail" => {
            let smtp = deliveries
                .smtp
                .as_ref()
                .ok_or("this server has no --smtp: the mail waits for one")?;
            mail(store, smtp, vendor, &amendment, &d.target).await
        }
        "webhook" => {
            let webhook = deliveries
                .webhook
                .as_ref()
                .ok_or("this server has no --provisioning-url: the notice waits for one")?;
            notify(webhook, vendor, &amendment, &d.target).await
        }
        other => Err(format!("unknown delivery kind {other:?}")),
    }
}

/// Sends both PDFs of `a` to `to`.
async fn mail(
    store: &Store,
    smtp: &Smtp,
    vendor: &str,
    a: &PortalAmendment,
    to: &str,
) -> Result<String, String> {
    let pdf = |which| async move {
        store
            .portal_pdf(&a.id, which)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("amendment {} has no such PDF", a.id))
    };
    let amendment = pdf(PortalPdf::Amendment).await?;
    let invoice = pdf(PortalPdf::Invoice).await?;
    let number = a.invoice.as_ref().map_or(0, |(_, n, _)| *n);
    let kind = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
    let text = format!(
        "{vendor}: aditivo {} do contrato {} assinado e aplicado; fatura nº {number} em anexo.\n\
         {vendor}: amendment {} of contract {} signed and applied; invoice no. {number} attached.\n\
         SHA-256 (aditivo / amendment): {}\n",
        a.id, a.contract_id, a.id, a.contract_id, a.sha256
    );
    let message = Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("from: {e}"))?)
        .to(to.parse().map_err(|e| format!("to {to:?}: {e}"))?)
        .subject(format!(
            "{vendor}: aditivo {} / amendment {} — contrato {}",
            a.id, a.id, a.contract_id
        ))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(text))
                .singlepart(Attachment::new(format!("{}.pdf", a.id)).body(amendment, kind.clone()))
                .singlepart(Attachment::new(format!("{}-invoice.pdf", a.id)).body(invoice, kind)),
        )
        .map_err(|e| e.to_string())?;
    let tls = TlsParameters::new(smtp.host.clone()).map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(Tls::Opportunistic(tls))
        .timeout(Some(ATTEMPT_TIMEOUT))
        .build();
    let answer = transport.send(message).await.map_err(|e| e.to_string())?;
    Ok(format!(
        "sent to {to} through {}:{}: {}",
        smtp.host,
        smtp.port,
        answer.message().collect::<Vec<_>>().join(" ")
    ))
}

/// The provisioning notice of `a`: what the customer holds from the effective day, to turn
/// the licences on.
fn notice(vendor: &str, a: &PortalAmendment) -> Value {
    let quote: Value = serde_json::from_str(&a.quote).unwrap_or(Value::Null);
    let lines: Vec<Value> = quote["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    json!({
                        "product_id": l["product_id"], "quantity": l["quantity"],
                        "change": l["effective_quantity"], "start": l["start"], "end": l["end"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "type": "portal.amendment.applied",
        "vendor": vendor,
        "amendment": a.id,
        "customer_id": a.customer_id,
        "contract": a.contract_id,
        "effective": quote["effective"],
        "event": a.event,
        "signed_at": a.signature.as_ref().map(|s| s.signed_at.clone()),
        "invoice": a.invoice.as_ref().map(|(v, n, _)| json!({"vendor": v, "number": n})),
        "lines": lines,
    })
}

/// POSTs the signed notice of `a` to `url`; a 2xx answer is a delivery.
async fn notify(
    w: &Webhook,
    vendor: &str,
    a: &PortalAmendment,
    url: &str,
) -> Result<String, String> {
    let body = notice(vendor, a).to_string();
    let timestamp = now_unix();
    let status = post(url, &signature(&w.secret, timestamp, &body), body).await?;
    if (200..300).contains(&status) {
        Ok(format!("{url} answered {status}"))
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// One POST of `body` (JSON) with the signature header, over HTTP/1.1 (TLS for https, with
/// the Mozilla roots); the answer's status.
async fn post(url: &str, signed: &str, body: String) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_string());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "expansa-portal")
        .header(SIGNATURE_HEADER, signed)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    if https {
        use tokio_rustls::rustls;
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| format!("{host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        send(tls, request).await
    } else {
        send(tcp, request).await
    }
}

async fn send<I>(io: I, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.status().as_u16())
}
