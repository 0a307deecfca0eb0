//! TLS for `hers serve --tls-cert C --tls-key K` (rustls with the ring provider): the
//! certificate chain and key from PEM files, and a listener that completes each handshake on
//! its own task (a slow or broken client never holds up the others) before axum sees the
//! connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::capped::{Placed, place};
use crate::error::{Error, Result};

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's certificate chain and private key (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn pem_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: cannot read the {what} ({e}); give a PEM file", path.display()))
}

impl TlsFiles {
    /// A TLS acceptor for these files (TLS 1.2 and 1.3, HTTP/1.1).
    pub fn acceptor(&self) -> Result<TlsAcceptor> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| pem_error(&self.cert, "certificate chain", e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| pem_error(&self.cert, "certificate chain", e))?;
        if certs.is_empty() {
            return Err(pem_error(&self.cert, "certificate chain", "no CERTIFICATE block"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| pem_error(&self.key, "private key", e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                Error::Config(format!(
                    "TLS: {} and {} do not make a usable certificate and key: {e}",
                    self.cert.display(),
                    self.key.display()
                ))
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Accepted connections after a completed handshake.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(Placed<TlsStream<TcpStream>>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` (on a task of the current runtime), handshaking each connection on
    /// a task of its own; at most as many connections at once, handshakes included, as
    /// `places` has permits.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor, places: Arc<tokio::sync::Semaphore>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let held = place(&places).await;
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Without TCP_NODELAY a small write waits for the peer's delayed ACK.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY not set for {addr}: {e}");
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((Placed::new(tls, held), addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {addr} timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Placed<TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task is gone only when the runtime stops.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
