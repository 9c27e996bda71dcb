//! One run's work under the lease: read, adopt, sweep, render, write.
//!
//! The base is the PPL this app last saw applied. Before each write the PPL
//! about to be written is recorded as an *intent*; a write whose answer was
//! lost (timeout, dropped connection, shutdown, a replica paused past its
//! lease) thus stays known as the app's own. A run that finds Zero holding
//! exactly an intent takes it as the base; otherwise only entries that
//! differ from the base *and* from every unsettled intent count as console
//! edits. Base, intents and adoptions are recorded only while this run's
//! fence is current.

use std::collections::BTreeMap;

use std::pin::pin;
use std::sync::atomic::Ordering;

use futures_util::TryStreamExt;
use jit_domain::{Email, RemoteEntry, Request, Rules, desired_entry};
use jit_store::{Applied, Fence, IntentId, TextDigest};
use jit_zero::Ppl;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::failure::SyncError;
use crate::measure;
use crate::merge::{Observed, outside_changes, render, renders_as};
use crate::{Reconciler, SyncReport};

impl Reconciler {
    pub(crate) async fn converge(&self, fence: &Fence) -> Result<SyncReport, SyncError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let store = &inner.store;
        let name = &cfg.policy_name;
        let mut report = SyncReport::default();

        let mut state = store.sync_state(name).await?;
        let mut remote = self.find_policy(state.policy_id.as_deref()).await?;

        for _ in 0..3 {
            let now = cfg.clock.now();
            let mut written = Vec::new();
            // Zero holding exactly the base (the usual case) means nobody
            // changed it since: there is nothing to adopt, so neither the
            // base nor the store's decisions are read as entries (at ten
            // thousand people, a megabyte each). The base's digest tells it
            // without reading the base; the base itself is read only when
            // that does not settle it (Zero storing the text reformatted,
            // a base recorded before digests were, an edit).
            let remote_digest = remote
                .as_ref()
                .map(|p| TextDigest::of(p.properties().ppl.as_str()));
            let mut base_ppl = None;
            let mut remote_is_base = match (&remote_digest, &state.base_digest) {
                (Some(r), Some(b)) if r == b => true,
                _ => {
                    base_ppl = base_of(store.sync_base(name).await?);
                    match (&remote, &base_ppl) {
                        (Some(p), Some(base)) => p.properties().ppl == *base,
                        (None, None) => true,
                        _ => false,
                    }
                }
            };
            if let Some(p) = &remote
                && !remote_is_base
            {
                let intents = store.intents(name).await?;
                match intents.iter().find(|i| p.properties().ppl.matches(&i.ppl)) {
                    Some(landed) => {
                        // Our own write whose answer was lost: it is the base.
                        store
                            .record_sync_success(
                                fence,
                                name,
                                &p.id,
                                Applied::Intent(landed.id),
                                landed.generation,
                                now,
                            )
                            .await?;
                        state = store.sync_state(name).await?;
                        remote_is_base = true;
                        report.recovered = true;
                        tracing::info!(
                            generation = landed.generation,
                            "found a write whose answer was lost in Zero; taken as applied"
                        );
                    }
                    None => {
                        written = intents
                            .iter()
                            .filter_map(|i| Observed::scan(&i.ppl, &cfg.decode).ok())
                            .collect();
                    }
                }
            }
            let remote_seen = match &remote {
                Some(p) => self.observe_remote(p, remote_is_base, now)?,
                None => {
                    measure::overdue_count(name, 0);
                    Observed::default()
                }
            };

            // Read the generation before the state it stands for.
            let mut generation = store.generation().await?;
            let mut open = self.read_open(now).await?;
            let base = if remote_is_base {
                Observed::default()
            } else {
                base_ppl
                    .as_ref()
                    .and_then(|v| Observed::scan(v.as_str(), &cfg.decode).ok())
                    .unwrap_or_default()
            };
            // Adopt first (rare: only when the remote differs from what the
            // app wrote), so the sweep below never undoes a console extension.
            if !remote_is_base
                && !outside_changes(&base, &written, &remote_seen, &open.decided()).is_empty()
            {
                let rules = &inner.rules;
                let adopted = store
                    .decide_all_fenced(&inner.rules.resource, fence, |open: &[Request]| {
                        outside_changes(
                            &base,
                            &written,
                            &remote_seen,
                            &OpenEntries::of(open, rules, now).decided(),
                        )
                        .into_iter()
                        .flat_map(|(email, entry)| {
                            let current = open.iter().find(|r| r.email == email);
                            rules.adopt(current, &email, entry, now)
                        })
                        .collect()
                    })
                    .await?;
                report.adopted += adopted.transitions.len();
                tracing::info!(
                    changes = adopted.transitions.len(),
                    "adopted changes made in Pomerium Zero"
                );
                generation = adopted.generation;
                // Dropped before the new read: at ten thousand people each
                // list is a megabyte, and holding both was the run's
                // largest allocation.
                drop(open);
                open = self.read_open(now).await?;
            }
            if open.due {
                let rules = &inner.rules;
                let swept = store
                    .decide_all_fenced(&inner.rules.resource, fence, |open: &[Request]| {
                        open.iter()
                            .flat_map(|r| rules.expire(Some(r), now))
                            .collect()
                    })
                    .await?;
                report.expired += swept.transitions.len();
                generation = swept.generation;
                drop(open);
                open = self.read_open(now).await?;
            }
            // What was read is no longer needed, and at thousands of grants
            // each is a megabyte: not held through the render and the write.
            let foreign = remote_seen.foreign;
            drop((base, base_ppl, written, remote_seen.entries));
            report.generation = generation;
            // Zero holding, byte for byte, what the store asks for (the
            // usual case) is found while the document is written out, so
            // no copy of it is made.
            let holds_desired = remote
                .as_ref()
                .is_some_and(|p| renders_as(&foreign, open.desired(), p.properties().ppl.as_str()));
            let (policy_id, settled) = match remote.take() {
                Some(p) if holds_desired => {
                    let id = p.id.clone();
                    (id, Settled::Held(p.into_properties().ppl))
                }
                Some(p) => {
                    let desired = render(&foreign, open.desired());
                    drop((foreign, open));
                    if p.properties().ppl == desired {
                        // The same document, stored reformatted.
                        (p.id, Settled::Held(desired))
                    } else {
                        let fresh = inner.zero.get_policy(&p.id).await?;
                        if fresh.properties().ppl != p.properties().ppl {
                            remote = Some(fresh);
                            continue;
                        }
                        let id = p.id.clone();
                        drop(p);
                        let mut props = fresh.into_properties();
                        // Moved, not copied (it may be megabytes): what Zero
                        // held is dropped before the write, and the write
                        // drops the text once its body is made.
                        props.ppl = desired;
                        let intent = self.intend(fence, &props.ppl, generation).await?;
                        inner.zero.update_policy(&id, props).await?;
                        self.count_write(&mut report);
                        (id, Settled::Wrote(intent))
                    }
                }
                None => {
                    let desired = render(&foreign, open.desired());
                    drop((foreign, open));
                    let intent = self.intend(fence, &desired, generation).await?;
                    let created = inner.zero.create_policy(&self.new_policy(desired)).await?;
                    self.count_write(&mut report);
                    // A person or an old replica may have created one at the same time.
                    self.find_policy(None).await?;
                    (created.id, Settled::Wrote(intent))
                }
            };
            let applied = match &settled {
                Settled::Wrote(intent) => Some(Applied::Intent(*intent)),
                Settled::Held(ppl) => {
                    let unchanged = state.last_error.is_none()
                        && state.policy_id.as_deref() == Some(policy_id.as_str())
                        && state.applied_generation >= generation
                        && state.base_digest.as_ref()
                            == Some(&match remote_digest {
                                // Zero held the render: its digest is the one taken above.
                                Some(d) if holds_desired => d,
                                _ => TextDigest::of(ppl.as_str()),
                            });
                    (!unchanged).then(|| Applied::Text(ppl.as_str()))
                }
            };
            if let Some(applied) = applied {
                store
                    .record_sync_success(
                        fence,
                        name,
                        &policy_id,
                        applied,
                        generation,
                        cfg.clock.now(),
                    )
                    .await?;
            }
            drop(settled);
            inner
                .status
                .send_modify(|s| s.policy_id = Some(policy_id.clone()));
            // What Zero holds now is what this run rendered: no grant past
            // its end (a desired entry ends after `now`).
            measure::overdue_count(name, 0);
            self.check_changesets(&policy_id).await;
            return Ok(report);
        }
        Err(SyncError::KeptChanging)
    }

    /// Checks the lease right before a write to Zero (renewing it, so the
    /// write has a whole TTL), then records what is about to be written.
    async fn intend(
        &self,
        fence: &Fence,
        ppl: &Ppl,
        generation: u64,
    ) -> Result<IntentId, SyncError> {
        let inner = &self.inner;
        let cfg = &inner.config;
        let now = cfg.clock.now();
        if !inner.store.renew_lease(fence, cfg.lease_ttl, now).await? {
            return Err(SyncError::LostLease);
        }
        Ok(inner
            .store
            .record_intent(fence, &cfg.policy_name, ppl.as_str(), generation, now)
            .await?)
    }

    /// The open requests on this resource as a run needs them, read one
    /// at a time: at ten thousand people the requests themselves would be
    /// megabytes, their entries a tenth of that.
    async fn read_open(&self, now: OffsetDateTime) -> Result<OpenEntries, SyncError> {
        let rules = &self.inner.rules;
        let seen = &self.inner.open_seen;
        let mut open = OpenEntries::expecting(seen.load(Ordering::Relaxed));
        let mut each = pin!(self.inner.store.each_open_request(Some(&rules.resource)));
        while let Some(r) = each.try_next().await? {
            open.add(&r, rules, now);
        }
        // A list that grew past the guess is left twice its length: given
        // back before the render and the writes.
        open.entries.shrink_to_fit();
        seen.store(open.entries.len(), Ordering::Relaxed);
        Ok(open)
    }

    fn count_write(&self, report: &mut SyncReport) {
        report.wrote = true;
        self.inner.status.send_modify(|s| s.writes += 1);
    }
}

/// How a run left Zero holding what the store asks for.
enum Settled {
    /// Zero held it already: this text (the base, or the same document in
    /// another form).
    Held(Ppl),
    /// This run wrote it, as the recorded intent.
    Wrote(IntentId),
}

/// The open requests' entries, lapsed grants included, in request order
/// (as the store reads them, and as [`jit_domain::desired_entries`] renders
/// them), and whether any request is due to be closed.
#[derive(Default)]
struct OpenEntries {
    entries: Vec<OpenEntry>,
    due: bool,
}

struct OpenEntry {
    entry: (Email, RemoteEntry),
    /// Whether the policy should still hold it (a lapsed grant should not).
    current: bool,
}

impl OpenEntries {
    /// Room for `seen` entries (what the last read found) and an eighth
    /// more. Grown by doubling instead, ten thousand entries of about 100
    /// bytes took 1.6 MB of heap at the peak of a run (heaptrack), a third
    /// of it the list being copied to twice its size.
    fn expecting(seen: usize) -> Self {
        Self {
            entries: Vec::with_capacity(seen + seen / 8),
            due: false,
        }
    }

    /// Of requests already in memory (a write transaction's), for
    /// [`OpenEntries::decided`], which does not depend on their order.
    fn of<'a>(
        open: impl IntoIterator<Item = &'a Request>,
        rules: &Rules,
        now: OffsetDateTime,
    ) -> Self {
        let mut entries = Self::default();
        for r in open {
            entries.add(r, rules, now);
        }
        entries
    }

    fn add(&mut self, r: &Request, rules: &Rules, now: OffsetDateTime) {
        let ever = PrimitiveDateTime::MIN.assume_utc();
        self.due |= !rules.expire(Some(r), now).is_empty();
        if let Some(entry) = desired_entry(r, ever) {
            self.entries.push(OpenEntry {
                entry: (r.email.clone(), entry),
                current: desired_entry(r, now).is_some(),
            });
        }
    }

    /// What the store decided for each email, lapsed grants included: a
    /// grant lapsing is not a decision, so it never outweighs a console
    /// extension.
    fn decided(&self) -> BTreeMap<Email, RemoteEntry> {
        self.entries.iter().map(|e| e.entry.clone()).collect()
    }

    /// The entries the policy should hold now.
    fn desired(&self) -> impl Iterator<Item = &(Email, RemoteEntry)> + Clone {
        self.entries.iter().filter(|e| e.current).map(|e| &e.entry)
    }
}

/// The base as PPL (the store keeps it as JSON text).
fn base_of(text: Option<String>) -> Option<Ppl> {
    text.and_then(|text| Ppl::from_json(text).ok())
}

#[cfg(test)]
mod tests {
    use jit_domain::{Ask, ResourceName};

    use super::*;

    #[test]
    fn a_read_as_large_as_the_last_is_not_grown_by_doubling() {
        let rules = Rules {
            resource: ResourceName::parse("app").unwrap(),
            ..Rules::default()
        };
        let now = OffsetDateTime::now_utc();
        let requests: Vec<Request> = (0..1100)
            .map(|i| {
                let email = Email::parse(&format!("p{i}@example.com")).unwrap();
                let moves = rules.request(None, &email, Ask::default(), now).unwrap();
                moves.last().unwrap().request.clone()
            })
            .collect();
        let mut open = OpenEntries::expecting(requests.len());
        let reserved = open.entries.capacity();
        for r in &requests {
            open.add(r, &rules, now);
        }
        assert_eq!(
            open.entries.len(),
            1100,
            "each pending request has an entry"
        );
        assert_eq!(open.entries.capacity(), reserved, "never reallocated");
        assert!(
            reserved < 1100 * 5 / 4,
            "reserved {reserved}, not a power of two"
        );
    }
}
