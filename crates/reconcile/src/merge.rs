//! The pure part of reconciliation: reading a policy as JIT entries plus
//! foreign rules, finding what changed outside the app since the last write
//! (a three-way comparison of base, remote and desired), and rendering the
//! policy the store asks for.

use std::collections::{BTreeMap, BTreeSet};

use jit_domain::{Email, RemoteEntry};
use jit_ppl::jit::{DecodeOptions, JitRule, PplTime};
use jit_ppl::{Policy, Rule};

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
    pub fn of(policy: &Policy, options: &DecodeOptions) -> Self {
        let mut foreign = Vec::new();
        let mut entries = BTreeMap::new();
        let mut ambiguous = BTreeSet::new();
        for rule in policy.rules() {
            let decoded = JitRule::decode(rule, options)
                .and_then(|jit| Some((Email::parse(jit.email()).ok()?, from_jit(&jit))));
            let Some((email, entry)) = decoded else {
                foreign.push(rule.clone());
                continue;
            };
            match entries.get(&email) {
                Some(seen) if *seen != entry => {
                    ambiguous.insert(email);
                }
                Some(_) => {}
                None => {
                    entries.insert(email, entry);
                }
            }
        }
        for email in &ambiguous {
            entries.remove(email);
        }
        Self {
            foreign,
            entries,
            ambiguous,
        }
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
/// canonical JIT rule per desired entry.
pub fn render(foreign: &[Rule], desired: &[(Email, RemoteEntry)]) -> Policy {
    let rules: Vec<JitRule> = desired
        .iter()
        .filter_map(|(e, entry)| to_jit(e, entry))
        .collect();
    Policy::from_parts(foreign.iter().cloned(), rules.iter())
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
