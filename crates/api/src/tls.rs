//! Built-in TLS (`serve --tls-cert FILE --tls-key FILE`): a PEM certificate chain and its
//! private key, read and checked before the server listens, served by rustls (TLS 1.2 and 1.3,
//! HTTP/1.1). [`crate::serve_on`] runs the handshake within the header timeout, so the limits
//! on connections and slow clients hold for TLS too.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::{self, ServerConfig};

/// Largest certificate or key file read, in bytes (a chain of a few certificates is ~10 KB).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// A checked TLS configuration: a certificate chain with its matching key.
#[derive(Clone)]
pub struct Tls(pub(crate) Arc<ServerConfig>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

/// Reads a PEM file of at most [`MAX_PEM_FILE`] bytes; `flag` names it in the errors.
fn read_pem(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("{flag} {shown}: cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{flag} {shown}: cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        anyhow::bail!("{flag} {shown}: larger than {MAX_PEM_FILE} bytes: not a PEM file of a certificate or key");
    }
    Ok(bytes)
}

/// Why a PEM file could not be read, in words.
fn pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "no PEM section of that kind in it".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The TLS configuration of `cert` (a PEM chain, the server's certificate first) and `key`
/// (its PEM private key: PKCS#8, PKCS#1 or SEC1): each readable, of the right kind, and the key
/// the certificate's.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Tls> {
    let cert_pem = read_pem(cert, "--tls-cert")?;
    let key_pem = read_pem(key, "--tls-key")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {}", cert.display(), pem_error(e)))?;
    if chain.is_empty() {
        anyhow::bail!(
            "--tls-cert {}: no certificate in it (a PEM file with \"-----BEGIN CERTIFICATE-----\")",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound if key_pem.windows(9).any(|w| w == b"ENCRYPTED") => {
                "the private key is encrypted (a passphrase), which a server cannot type: \
                 decrypt it, e.g. `openssl pkey -in KEY -out KEY.plain.pem`"
                    .into()
            }
            pem::Error::NoItemsFound => {
                "no private key in it (a PEM file with \"-----BEGIN PRIVATE KEY-----\")".into()
            }
            other => pem_error(other),
        };
        anyhow::anyhow!("--tls-key {}: {why}", key.display())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            anyhow::anyhow!(
                "--tls-key {} does not go with --tls-cert {} ({e}): give the certificate's own private key",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls(Arc::new(config)))
}
