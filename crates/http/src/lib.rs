//! The HTTP client builder every outbound integration starts from (the JWKS
//! fetch, the Zero API, notifications, Slack, the health check).
//!
//! `reqwest::Client::builder().build()` reads and parses the system's whole
//! CA bundle (`/etc/ssl/certs`, some 140 certificates) into a root store of
//! its own, for every client built: at start-up the service built four,
//! and that was nine tenths of the instructions its start-up ran. Here the
//! process has one TLS configuration, and its verifier reads the roots once,
//! at the first certificate it checks: a process that never speaks TLS
//! (the demo, the fakes of the tests) never reads them, and one that does
//! keeps one root store.
//!
//! Verification is rustls-platform-verifier's, as reqwest's own default:
//! the platform's roots, hostname checks, TLS 1.2 and 1.3, aws-lc-rs.

#![forbid(unsafe_code)]

use std::fmt;
#[cfg(test)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// A client builder with the process's TLS configuration; the caller adds
/// its timeouts, redirect policy and user agent.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(TLS.clone())
}

static ROOTS: LazyLock<Arc<PlatformRoots>> = LazyLock::new(|| {
    // As reqwest: an installed default provider wins, else aws-lc-rs.
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    Arc::new(PlatformRoots::new(provider))
});

static TLS: LazyLock<ClientConfig> = LazyLock::new(|| {
    let mut config = ClientConfig::builder_with_provider(ROOTS.provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(ROOTS.clone())
        .with_no_client_auth();
    // reqwest is built for HTTP/1.1 only; a preconfigured TLS setup brings
    // its own protocol list.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
});

/// How many times the roots were read (each attempt).
#[cfg(test)]
static ROOT_LOADS: AtomicUsize = AtomicUsize::new(0);

/// The platform's verifier, made (roots read) at the first certificate
/// checked. Handshake signatures need no roots and are checked as the
/// platform verifier checks them, with the provider's algorithms.
struct PlatformRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<rustls_platform_verifier::Verifier>,
}

impl PlatformRoots {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        PlatformRoots {
            provider,
            verifier: OnceLock::new(),
        }
    }

    /// A failure (no CA bundle) is not kept: the next handshake tries again,
    /// so installing the bundle needs no restart.
    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        if let Some(verifier) = self.verifier.get() {
            return Ok(verifier);
        }
        #[cfg(test)]
        ROOT_LOADS.fetch_add(1, Ordering::Relaxed);
        let verifier = rustls_platform_verifier::Verifier::new(self.provider.clone())?;
        Ok(self.verifier.get_or_init(|| verifier))
    }
}

impl fmt::Debug for PlatformRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformRoots")
            .field("loaded", &self.verifier.get().is_some())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PlatformRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_share_one_root_store_read_at_the_first_check() {
        let loads = || ROOT_LOADS.load(Ordering::Relaxed);
        for _ in 0..4 {
            client().build().expect("a client");
        }
        assert_eq!(loads(), 0, "building clients reads no roots");

        let name = ServerName::try_from("example.com").expect("a name");
        let check = || {
            ROOTS.verify_server_cert(
                &CertificateDer::from(&b"not a certificate"[..]),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
        };
        assert!(check().is_err(), "garbage is no certificate");
        assert!(check().is_err());
        client().build().expect("a client");
        assert_eq!(loads(), 1, "the roots are read once, for every client");
    }

    #[test]
    fn handshakes_offer_what_the_provider_verifies() {
        assert!(!ROOTS.supported_verify_schemes().is_empty());
        assert_eq!(TLS.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
