//! Fakes of the outside world for tests and the demo: a Pomerium Zero
//! management API ([`zero`]) and a Pomerium assertion signer with its JWKS
//! endpoint ([`pomerium`]). Both listen on loopback ports they choose and
//! behave like the real services as described in `docs/pomerium.md`.

#![forbid(unsafe_code)]

pub mod pomerium;
pub mod zero;
