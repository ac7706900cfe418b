//! TLS for `https://` endpoints (feature `tls`, on by default): rustls with the ring
//! provider (it builds with a C compiler alone), Mozilla's roots or the CA a setting names,
//! and a client certificate for mutual TLS.
//!
//! Everything that can be wrong with the files is found when the exporter is built and named
//! in a `ConfigError`; what can only be wrong with the peer (an unknown issuer, an expired
//! certificate, a name that does not match) is a permanent failure of each batch, counted and
//! logged with rustls's reason.

use crate::TlsFiles;
use monkit::settings::ConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Reads a PEM file of certificates; a file with none is an error.
fn certificates(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bad = |why: String| ConfigError::new(setting.to_owned(), path.display().to_string(), why);
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("a readable PEM certificate file ({e})")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("PEM certificates ({e})")))?;
    if certs.is_empty() {
        return Err(bad("a PEM file holding at least one CERTIFICATE".into()));
    }
    Ok(certs)
}

impl TlsFiles {
    /// The rustls configuration these files make, or which file is wrong and how. `name`
    /// names the exporter in errors.
    pub(crate) fn config(&self, name: &str) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let setting = format!("{name} TLS certificate (CA)");
                for cert in certificates(&setting, path)? {
                    roots.add(cert).map_err(|e| {
                        ConfigError::new(
                            setting.clone(),
                            path.display().to_string(),
                            format!("a CA certificate rustls accepts ({e})"),
                        )
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new(format!("{name} TLS"), "", e.to_string()))?
            .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let setting = format!("{name} TLS client certificate");
                let chain = certificates(&setting, cert)?;
                let key_setting = format!("{name} TLS client key");
                let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    ConfigError::new(
                        key_setting.clone(),
                        key.display().to_string(),
                        format!("a readable PEM private key ({e})"),
                    )
                })?;
                builder.with_client_auth_cert(chain, private).map_err(|e| {
                    ConfigError::new(
                        key_setting,
                        key.display().to_string(),
                        format!("the key of the client certificate ({e})"),
                    )
                })?
            }
        };
        Ok(Arc::new(config))
    }
}

/// Whether a failed request failed in TLS itself (the peer's certificate, the handshake):
/// then retrying cannot help. The reason, if so.
pub fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    for _ in 0..16 {
        let err = cur?;
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(format!("TLS: {t}"));
        }
        // An io::Error's own source skips the error it wraps (often another io::Error, as
        // connectors nest them): look into it.
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        cur = wrapped.or_else(|| err.source());
    }
    None
}
