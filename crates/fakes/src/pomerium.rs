//! A fake Pomerium for the identity side: a [`Signer`] that mints
//! `X-Pomerium-Jwt-Assertion` tokens byte-for-byte in Pomerium's shape
//! (header `alg`/`kid`/`typ`, claims `iss aud jti iat exp sub user email groups
//! sid name`, `kid` = hex RFC 7638 thumbprint), three-step key rotation, raw
//! forging for negative tests, and a [`JwksServer`] publishing the keys the
//! way Pomerium does (`Cache-Control: max-age=60`, FNV ETag, 304 on match).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use jit_fakes::pomerium::{Alg, JwksServer, Signer, TestUser};
//! let signer = Signer::new(Alg::Es256)?;
//! let server = JwksServer::start(signer.clone()).await?;
//! let token = signer.mint(&server.host(), &TestUser::alice());
//! # let _ = token; Ok(()) }
//! ```

mod keys;
mod server;
mod signer;

pub use keys::{Alg, KeyGenError, SigningKey};
pub use server::{DEFAULT_MAX_AGE_SECS, JWKS_PATH, JwksServer, WELL_KNOWN_PATH};
pub use signer::{
    ASSERTION_LIFETIME_SECS, IssuerFormat, RotationError, SignWith, Signer, TestUser, encode_part,
};
