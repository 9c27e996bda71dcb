//! The pure part of reconciliation: reading a policy as JIT entries plus
//! foreign rules, finding what changed outside the app since the last write
//! (a three-way comparison of base, remote and desired), and rendering the
//! policy the store asks for.

use std::collections::{BTreeMap, BTreeSet};

use jit_domain::{Email, RemoteEntry};
use jit_ppl::jit::{DecodeOptions, JitRule, PplTime, json_from_parts};
use jit_ppl::{ParseError, Policy, Rule};
use jit_zero::Ppl;

/// A policy as the reconciler sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Rules this app does not own, verbatim and in document order: foreign
    /// ones and JIT-shaped ones whose email text is not exactly a usable
    /// address (such as ` bob@x `, which Pomerium's exact `is` matches to
    /// nobody: reading it as `bob@x` would grant what the console never did).
    pub foreign: Vec<Rule>,
    /// One JIT entry per email, keyed by the rule's email text exactly
    /// (`Bob@X` and `bob@x` are two users, as they are to Pomerium).
    pub entries: BTreeMap<Email, RemoteEntry>,
    /// Emails with several different JIT entries: nobody can say which one
    /// is meant, so none is adopted and the store's view is written back.
    pub ambiguous: BTreeSet<Email>,
}

impl Observed {
    /// Reads PPL text rule by rule, never holding the whole policy: the
    /// entries and foreign rules are far smaller than the rules they come
    /// from.
    pub fn scan(ppl: &str, options: &DecodeOptions) -> Result<Self, ParseError> {
        let mut observed = Self::default();
        Policy::scan_json_str(ppl, |rule| {
            if !observed.add(&rule, options) {
                observed.foreign.push(rule);
            }
        })?;
        Ok(observed.settle())
    }

    /// Takes `rule` as a JIT entry if it is one (returns whether it was).
    fn add(&mut self, rule: &Rule, options: &DecodeOptions) -> bool {
        let decoded = JitRule::decode(rule, options)
            .and_then(|jit| Some((Email::parse(jit.email()).ok()?, from_jit(&jit))));
        let Some((email, entry)) = decoded else {
            return false;
        };
        match self.entries.get(&email) {
            Some(seen) if *seen != entry => {
                self.ambiguous.insert(email);
            }
            Some(_) => {}
            None => {
                self.entries.insert(email, entry);
            }
        }
        true
    }

    fn settle(mut self) -> Self {
        for email in &self.ambiguous {
            self.entries.remove(email);
        }
        self
    }
}

/// Entries someone changed in Zero: the remote value differs from the base
/// (what the app last saw applied) *and* from every unsettled intent in
/// `written` (what the app may have written since, its answer lost: the
/// app's own write is never a console edit). Each is returned with its
/// remote value (`None` = removed) for adoption — unless the store decided
/// that email differently since the base, in which case the app's newer
/// decision wins and is written over the edit (the safe side when the order
/// of the two cannot be known).
pub fn outside_changes(
    base: &Observed,
    written: &[Observed],
    remote: &Observed,
    desired: &BTreeMap<Email, RemoteEntry>,
) -> Vec<(Email, Option<RemoteEntry>)> {
    let emails: BTreeSet<&Email> = base.entries.keys().chain(remote.entries.keys()).collect();
    emails
        .into_iter()
        .filter(|e| !remote.ambiguous.contains(*e))
        .filter_map(|email| {
            let (b, r) = (base.entries.get(email), remote.entries.get(email));
            let edited = r != b && written.iter().all(|w| w.entries.get(email) != r);
            let store_changed = desired.get(email) != b;
            (edited && !store_changed).then(|| (email.clone(), r.copied()))
        })
        .collect()
}

/// The policy to write: the remote's foreign rules first, verbatim, then one
/// canonical JIT rule per desired entry. Written as text rule by rule, into
/// a buffer of about `len` bytes (the length of the document it replaces).
pub fn render<'a>(
    foreign: &[Rule],
    desired: impl IntoIterator<Item = &'a (Email, RemoteEntry)>,
    len: usize,
) -> Ppl {
    let rules = desired
        .into_iter()
        .filter_map(|(e, entry)| to_jit(e, entry));
    Ppl::from_json(json_from_parts(foreign, rules, len)).expect("rendered PPL is JSON")
}

fn from_jit(rule: &JitRule) -> RemoteEntry {
    match rule {
        JitRule::Pending { .. } => RemoteEntry::Pending,
        JitRule::Grant { after, before, .. } => RemoteEntry::Grant {
            starts_at: after.map(PplTime::get),
            expires_at: before.get(),
        },
    }
}

fn to_jit(email: &Email, entry: &RemoteEntry) -> Option<JitRule> {
    let email = email.as_str().to_owned();
    Some(match entry {
        RemoteEntry::Pending => JitRule::Pending { email },
        RemoteEntry::Grant {
            starts_at,
            expires_at,
        } => JitRule::Grant {
            email,
            // Rounded towards less access if a time ever carries a fraction.
            after: match starts_at {
                Some(s) => Some(PplTime::ceil(*s).ok()?),
                None => None,
            },
            before: PplTime::floor(*expires_at).ok()?,
        },
    })
}

#[cfg(test)]
mod tests;
