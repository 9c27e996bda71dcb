//! The access-request domain of pomerium-jit, free of HTTP, SQL and Pomerium
//! Zero.
//!
//! A request for access moves through one state machine ([`State`]):
//!
//! ```text
//!             approve                expire (time passes)
//!   Pending ──────────▶ Active ─────────────────────────▶ Expired
//!      │                  │ revoke / cancel (give back)
//!      │                  └────────────────────────────▶ Revoked
//!      ├── reject ───────────────────────────────────────▶ Rejected
//!      └── cancel (by the requester) ────────────────────▶ Cancelled
//! ```
//!
//! Every move is decided by [`Rules`] from the email's open request (if any)
//! and yields [`Transition`]s: the new request state plus exactly one
//! [`AuditEvent`] each, which the store writes in one transaction. An illegal
//! move is a [`DomainError`] that says why, never a silent no-op.

#![forbid(unsafe_code)]

mod access;
mod audit;
mod duration;
mod email;
mod render;
mod resource;
mod rules;

pub use access::{Approval, Ask, ExtensionAsk, Grant, Request, RequestId, State, Status};
pub use audit::{Action, Actor, AuditEvent, Operator};
pub use duration::{DurationError, GrantDuration};
pub use email::{Email, EmailError};
pub use render::{RemoteEntry, desired_entries, desired_entry};
pub use resource::{
    Approvers, AutoApprove, Condition, Person, PolicyTarget, Profile, Resource, ResourceName,
    ResourceNameError,
};
pub use rules::{
    Change, DomainError, Durations, Pattern, PatternError, Reason, ReasonError, ReasonRule, Rules,
    Seen, Ticket, TicketRule, Transition,
};
