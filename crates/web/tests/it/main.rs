//! The web edge driven as Pomerium and browsers drive it, against a real
//! store, reconciler and verifier and the fake Pomerium Zero.

mod harness;

mod admin;
mod api;
mod audit;
mod history;
mod identity;
mod index;
mod open_mode;
mod pages;
mod paging;
mod requests;
mod security;
mod sync;
