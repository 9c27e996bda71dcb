//! The pure part of reconciliation: reading a policy as JIT entries plus
//! foreign rules, finding what changed outside the app since the last write
//! (a three-way comparison of base, remote and desired), and rendering the
//! policy the store asks for.

use std::collections::{BTreeMap, BTreeSet};

use jit_domain::{Email, RemoteEntry};
use jit_ppl::jit::{
    DecodeOptions, JitRule, PplTime, json_from_parts, json_from_parts_is, json_from_parts_len,
};
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

    /// The foreign rules alone, each JIT entry handed to `entry` instead of
    /// kept: for a document whose entries are known already (Zero holding
    /// the base), where they would be most of what is read.
    pub fn scan_foreign(
        ppl: &str,
        options: &DecodeOptions,
        mut entry: impl FnMut(RemoteEntry),
    ) -> Result<Self, ParseError> {
        let mut foreign = Vec::new();
        Policy::scan_json_str(ppl, |rule| match decode(&rule, options) {
            Some((_, e)) => entry(e),
            None => foreign.push(rule),
        })?;
        Ok(Self {
            foreign,
            ..Self::default()
        })
    }

    /// Takes `rule` as a JIT entry if it is one (returns whether it was).
    fn add(&mut self, rule: &Rule, options: &DecodeOptions) -> bool {
        let Some((email, entry)) = decode(rule, options) else {
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

/// `rule` as a JIT entry, if it is one whose email is a usable address.
fn decode(rule: &Rule, options: &DecodeOptions) -> Option<(Email, RemoteEntry)> {
    let jit = JitRule::decode(rule, options)?;
    Some((Email::parse(jit.email()).ok()?, from_jit(&jit)))
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
/// a buffer of the text's length (found by a first pass that writes
/// nothing: a buffer grown by doubling holds up to twice the text, a
/// megabyte more at ten thousand grants).
pub fn render<'a>(
    foreign: &[Rule],
    desired: impl IntoIterator<Item = &'a (Email, RemoteEntry), IntoIter: Clone>,
) -> Ppl {
    let rules = jit_rules(desired);
    let len = json_from_parts_len(foreign, rules.clone());
    Ppl::from_json(json_from_parts(foreign, rules, len)).expect("rendered PPL is JSON")
}

/// Whether [`render`] would write exactly `text`, found without writing
/// the document anywhere.
pub fn renders_as<'a>(
    foreign: &[Rule],
    desired: impl IntoIterator<Item = &'a (Email, RemoteEntry), IntoIter: Clone>,
    text: &str,
) -> bool {
    json_from_parts_is(foreign, jit_rules(desired), text)
}

/// The canonical JIT rule of each desired entry, in order.
fn jit_rules<'a, I>(desired: I) -> impl Iterator<Item = JitRule> + Clone + use<'a, I>
where
    I: IntoIterator<Item = &'a (Email, RemoteEntry), IntoIter: Clone>,
{
    desired
        .into_iter()
        .filter_map(|(e, entry)| to_jit(e, entry))
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
