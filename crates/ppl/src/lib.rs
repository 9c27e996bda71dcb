//! The Pomerium Policy Language (PPL) for just-in-time access: a lossless document model,
//! the JIT rule encoding, and an evaluator.
//!
//! # Model
//! A document is one rule object or an array of them ([`Policy::Single`] / [`Policy::List`]).
//! A [`Rule`] maps actions (`allow`/`deny`) to a [`Body`], which maps operators
//! (`and`/`or`/`not`/`nor`) to arrays of [`Criterion`]s; a criterion is a one-key object
//! whose value is kept as arbitrary JSON. Key and item order are kept, so rendering
//! ([`Policy::to_value`], `Serialize`) reproduces the document exactly, byte for byte
//! through `serde_json`. This matters because rules the app does not own must be carried
//! over verbatim: the Go original erased them.
//!
//! Choices:
//! - **`null`** reads as the empty policy and renders as `[]`: the Zero API may send `null`
//!   for a policy without rules, and `[]` is the same policy in a form every reader accepts.
//! - `{}` (a rule without actions, which the Go original creates) and `[]` are valid.
//! - Invalid documents give a [`ParseError`] with a JSON pointer to the bad value and
//!   what is wrong there. Parsing never panics.
//!
//! # JIT encoding ([`jit`])
//! One rule per user: `email` + `reject` (pending) or `email` + `date` (grant). Decoding
//! also accepts console/docs spellings; anything else is foreign and left alone.
//! **Offset-less dates** (`2150-01-02T16:20:00`, as in the docs) are read at
//! [`jit::DecodeOptions::naive_offset`], UTC by default: the zone Pomerium applies is
//! unconfirmed, so it is configurable. Dates are written as RFC 3339 UTC with `Z`.
//!
//! # Evaluation ([`eval`])
//! Follows Pomerium core's PPL compiler: the operators of a body are OR-ed terms (not
//! AND-ed), an **empty operator** is no term at all, deny wins, no allow term means deny.
//! It **fails safe**: a criterion it cannot decide (request-dependent, unknown, malformed)
//! is unknown, unknown allow terms do not match and unknown deny terms do, so it never
//! allows what Pomerium would deny.

#![forbid(unsafe_code)]

mod date;
pub mod eval;
pub mod jit;
mod model;

pub use model::{Action, Body, Criterion, JsonKind, Operator, ParseError, Policy, Problem, Rule};
