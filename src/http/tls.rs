//! HTTPS: a certificate chain and private key from PEM files, served with
//! rustls (ring), and reloaded from the same files on request (SIGHUP, after
//! an ACME renewal) without touching a connection: the new pair is
//! presented to the handshakes that follow, connections already set up keep
//! the one they have. A pair that cannot be read, parsed or does not match
//! is refused whole: at startup the server does not start, on a reload the
//! previous pair stays.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use thiserror::Error;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, InconsistentKeys, ServerConfig};

use crate::local_file::{self, FileError, Links};

/// The largest certificate chain or key file read: a chain of a dozen
/// RSA-4096 certificates is some 30 KB.
pub const MAX_PEM: u64 = 1 << 20;

/// Where the certificate chain and its key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// Why a certificate and key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {0}")]
    Read(#[source] FileError),
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: not a PEM private key", path.display())]
    NoKey { path: PathBuf },
    #[error("{}: cannot use this private key: {source}", path.display())]
    BadKey { path: PathBuf, source: rustls::Error },
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: cannot use this certificate: {source}", path.display())]
    BadCertificate { path: PathBuf, source: rustls::Error },
    #[error("cannot set up TLS: {0}")]
    Config(#[source] rustls::Error),
}

/// The server side of TLS, with a certificate that can be replaced.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the pair and sets up TLS 1.2 and 1.3 with ALPN `http/1.1`.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let key = certified_key(&files, &provider)?;
        let current = Arc::new(Current { key: RwLock::new(Arc::new(key)), provider: Arc::clone(&provider) });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { files, current, acceptor: TlsAcceptor::from(Arc::new(config)) })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; on success new handshakes use the new pair,
    /// on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.files, &self.current.provider)?;
        *self.current.key.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
        Ok(())
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

/// The pair handed to each handshake.
struct Current {
    key: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Current")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.key.read().unwrap_or_else(|poisoned| poisoned.into_inner())))
    }
}

/// Reads and checks a pair: the key must parse and match the first certificate.
fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&files.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate { path: files.cert.clone() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: files.cert.clone() });
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey { path: files.key.clone() })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey { path: files.key.clone(), source })?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err(TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone() })
        }
        Err(source) => Err(TlsError::BadCertificate { path: files.cert.clone(), source }),
    }
}

/// A PEM file of at most [`MAX_PEM`] bytes. Read without waiting: a FIFO
/// put in its place is refused, so neither startup nor a reload hangs.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    local_file::read(path, MAX_PEM, Links::Follow).map_err(TlsError::Read)
}
