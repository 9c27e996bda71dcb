//! Notifications of pomerium-jit.
//!
//! Every committed decision leaves one notice per audit event in the store's
//! outbox, in its own transaction (see `jit_store::Notice`). The
//! [`Notifier`] decides who hears what ([`route`]), renders each message
//! once ([`render`]) and delivers it over the configured channels
//! ([`config`]): a signed JSON webhook, a Slack incoming webhook with
//! Approve / Reject buttons, or email over SMTP with TLS. Deliveries are
//! retried with exponential backoff and jitter, one replica at a time, and
//! carry an idempotency key so receivers can drop a repeat.

#![forbid(unsafe_code)]

pub mod config;
pub mod render;
pub mod route;
pub mod send;
mod worker;

pub use config::{Channel, ChannelKind, NotifyConfig, RawNotifications, Timing};
pub use send::{Sender, SetupError};
pub use worker::{LEASE, Notifier, Round, backoff};
