//! The compactor's decisions, as a pure function: state in, actions out.
//!
//! [`plan`] reads a snapshot of the index (every tenant's streams and chunk
//! references, the index partitions), the retention policies, the delete
//! requests whose cancel period is over, the object deletions waiting for
//! their delay and the clock's `now`, and returns what to do. It does no
//! I/O, so every rule below is tested with plain values.
//!
//! Rules, in priority order for a chunk (a chunk gets at most one action):
//! 1. Retention (when enabled): a chunk is expired when `now - through` is
//!    greater than its stream's period (Loki's `expirationChecker.Expired`);
//!    it leaves the index at once and its object is deleted after the delay.
//! 2. Delete requests: a chunk wholly inside a request without line filters
//!    is deleted; any other chunk a request touches is rewritten with every
//!    applicable request's filter.
//! 3. Merging: runs of small chunks (under half the target size) of one
//!    stream, within one day, are merged while their total stays under the
//!    target size.
//!
//! Then: a whole day partition is dropped once `now - end of day` exceeds
//! the longest period any stream of the tenant keeps data (Loki's
//! `DropFromIndex`); past days with several index segments are merged into
//! one; object deletions whose delay has passed are executed; every delete
//! shard the plan covers is marked processed.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::retention::RetentionPolicy;
use crate::model::{Labels, Matcher, TenantId, Timestamp};
use crate::store::index::{ChunkRef, Day, IndexedStream};

/// What the plan needs to know about one tenant.
#[derive(Clone, Debug)]
pub struct TenantState {
    pub tenant: TenantId,
    pub policy: RetentionPolicy,
    /// Every stream with every chunk reference.
    pub streams: Vec<IndexedStream>,
    /// Index partitions with their segment counts.
    pub partitions: Vec<(Day, usize)>,
}

/// A delete shard whose cancel period is over and that is not processed.
#[derive(Clone, Debug)]
pub struct ReadyDelete {
    pub request_id: String,
    pub shard: usize,
    pub tenant: TenantId,
    pub matchers: Vec<Matcher>,
    pub has_filter: bool,
    /// Inclusive bounds.
    pub start: Timestamp,
    pub end: Timestamp,
}

/// An object deletion waiting for its delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub tenant: TenantId,
    pub chunk: ChunkRef,
    pub due: Timestamp,
}

#[derive(Clone, Debug)]
pub struct PlanSettings {
    pub retention_enabled: bool,
    pub delete_delay: Duration,
    /// Merged chunks stay at most this large (compressed bytes).
    pub chunk_target_size: u64,
    /// At most this many merges per run (bounds the run's work).
    pub max_merges: usize,
}

#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub now: Timestamp,
    pub tenants: &'a [TenantState],
    pub deletes: &'a [ReadyDelete],
    pub waiting: &'a [Waiting],
    pub settings: PlanSettings,
}

/// Index of a delete shard in [`PlanInput::deletes`].
pub type DeleteIndex = usize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Past retention: out of the index now, object deleted at `due`.
    Expire {
        tenant: TenantId,
        labels: Labels,
        chunk: ChunkRef,
        due: Timestamp,
    },
    /// Wholly covered by a delete request without line filters.
    Delete {
        tenant: TenantId,
        labels: Labels,
        chunk: ChunkRef,
        due: Timestamp,
        by: DeleteIndex,
    },
    /// Touched by delete requests: rewrite without the entries they select.
    Rewrite {
        tenant: TenantId,
        labels: Labels,
        chunk: ChunkRef,
        due: Timestamp,
        by: Vec<DeleteIndex>,
    },
    /// Small chunks of one stream merged into one.
    Merge {
        tenant: TenantId,
        labels: Labels,
        chunks: Vec<ChunkRef>,
        due: Timestamp,
    },
    /// A day partition entirely past retention.
    DropPartition { tenant: TenantId, day: Day },
    /// A past day's index segments merged into one.
    MergeIndex { tenant: TenantId, day: Day },
    /// A waiting object deletion whose delay has passed.
    DeleteObject { tenant: TenantId, chunk: ChunkRef },
    /// Every chunk of this delete shard is handled by the actions above.
    MarkProcessed { by: DeleteIndex },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The retention backlog this plan found, before carrying it out: the
    /// largest of `now - through - period` over indexed chunks past
    /// retention and of `now - due` over waiting object deletions that are
    /// overdue (0: nothing is late). A run that keeps up sees at most about
    /// one compaction interval; a lag that grows means the work is not done.
    pub retention_lag: Duration,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Whether `now - t > period` (Loki: `now.Sub(through) > period`).
fn older_than(now: Timestamp, t: Timestamp, period: Duration) -> bool {
    !period.is_zero() && now.nanos_since(t) > nanos(period)
}

/// Decides what the compactor does this run.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let now = input.now;
    let s = &input.settings;
    let due = now.saturating_add_nanos(nanos(s.delete_delay));
    let mut out = Plan::default();
    let mut merges = 0usize;
    let mut lag = 0i64;
    for t in input.tenants {
        let deletes: Vec<(DeleteIndex, &ReadyDelete)> = input
            .deletes
            .iter()
            .enumerate()
            .filter(|(_, d)| d.tenant == t.tenant)
            .collect();
        for stream in &t.streams {
            let period = t.policy.period_for(&stream.labels);
            let applicable: Vec<&(DeleteIndex, &ReadyDelete)> = deletes
                .iter()
                .filter(|(_, d)| d.matchers.iter().all(|m| m.matches_labels(&stream.labels)))
                .collect();
            let mut mergeable: Vec<ChunkRef> = Vec::new();
            for c in &stream.chunks {
                if s.retention_enabled && older_than(now, c.through, period) {
                    lag = lag.max(now.nanos_since(c.through).saturating_sub(nanos(period)));
                    out.actions.push(Action::Expire {
                        tenant: t.tenant.clone(),
                        labels: stream.labels.clone(),
                        chunk: *c,
                        due,
                    });
                    continue;
                }
                let touching: Vec<&(DeleteIndex, &ReadyDelete)> = applicable
                    .iter()
                    .copied()
                    .filter(|(_, d)| c.from <= d.end && c.through >= d.start)
                    .collect();
                if let Some((by, _)) = touching
                    .iter()
                    .find(|(_, d)| !d.has_filter && d.start <= c.from && d.end >= c.through)
                {
                    out.actions.push(Action::Delete {
                        tenant: t.tenant.clone(),
                        labels: stream.labels.clone(),
                        chunk: *c,
                        due,
                        by: *by,
                    });
                    continue;
                }
                if !touching.is_empty() {
                    out.actions.push(Action::Rewrite {
                        tenant: t.tenant.clone(),
                        labels: stream.labels.clone(),
                        chunk: *c,
                        due,
                        by: touching.iter().map(|(i, _)| *i).collect(),
                    });
                    continue;
                }
                if c.size < s.chunk_target_size / 2 {
                    mergeable.push(*c);
                }
            }
            for group in merge_groups(&mergeable, s.chunk_target_size) {
                if merges >= s.max_merges {
                    break;
                }
                merges += 1;
                out.actions.push(Action::Merge {
                    tenant: t.tenant.clone(),
                    labels: stream.labels.clone(),
                    chunks: group,
                    due,
                });
            }
        }
        let today = Day::of(now);
        let drop_before = t
            .policy
            .max_period()
            .filter(|_| s.retention_enabled)
            .map(|max| now.saturating_sub_nanos(nanos(max)));
        for &(day, segments) in &t.partitions {
            if let Some(limit) = drop_before
                && day.end() < limit
            {
                out.actions.push(Action::DropPartition {
                    tenant: t.tenant.clone(),
                    day,
                });
            } else if day < today && segments > 1 {
                out.actions.push(Action::MergeIndex {
                    tenant: t.tenant.clone(),
                    day,
                });
            }
        }
    }
    for w in input.waiting {
        if w.due <= now {
            lag = lag.max(now.nanos_since(w.due));
            out.actions.push(Action::DeleteObject {
                tenant: w.tenant.clone(),
                chunk: w.chunk,
            });
        }
    }
    for by in 0..input.deletes.len() {
        out.actions.push(Action::MarkProcessed { by });
    }
    out.retention_lag = Duration::from_nanos(u64::try_from(lag).unwrap_or(0));
    out
}

/// Runs of consecutive (by `from`) chunks in one day whose total size stays
/// within `target`; only runs of two or more.
fn merge_groups(chunks: &[ChunkRef], target: u64) -> Vec<Vec<ChunkRef>> {
    let mut by_day: BTreeMap<(Day, Day), Vec<ChunkRef>> = BTreeMap::new();
    for c in chunks {
        by_day
            .entry((Day::of(c.from), Day::of(c.through)))
            .or_default()
            .push(*c);
    }
    let mut out = Vec::new();
    for ((first, last), mut cs) in by_day {
        if first != last {
            continue; // a chunk across midnight stays as it is
        }
        cs.sort_by_key(|c| (c.from, c.through, c.checksum));
        let mut group: Vec<ChunkRef> = Vec::new();
        let mut size = 0u64;
        for c in cs {
            if !group.is_empty() && size + c.size > target {
                if group.len() > 1 {
                    out.push(std::mem::take(&mut group));
                }
                group.clear();
                size = 0;
            }
            size += c.size;
            group.push(c);
        }
        if group.len() > 1 {
            out.push(group);
        }
    }
    out
}

/// The chunks an action takes out of the index (for conflict checks and
/// tests).
pub fn removed_chunks(action: &Action) -> Vec<ChunkRef> {
    match action {
        Action::Expire { chunk, .. }
        | Action::Delete { chunk, .. }
        | Action::Rewrite { chunk, .. } => vec![*chunk],
        Action::Merge { chunks, .. } => chunks.clone(),
        _ => Vec::new(),
    }
}

/// Every chunk appears in at most one action (a property the worker relies
/// on); used by tests.
pub fn chunks_are_disjoint(plan: &Plan) -> bool {
    let mut seen = HashSet::new();
    plan.actions
        .iter()
        .flat_map(removed_chunks)
        .all(|c| seen.insert(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MatchOp, parse_selector};
    use crate::store::compactor::retention::StreamRule;

    const DAY: i64 = 86_400;
    const BASE: i64 = 20_000 * DAY; // a midnight

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn chunk(l: &Labels, from_s: i64, through_s: i64, size: u64) -> ChunkRef {
        ChunkRef {
            stream: l.stream_id(),
            from: Timestamp::from_secs(from_s),
            through: Timestamp::from_secs(through_s),
            checksum: (from_s as u32) ^ (size as u32),
            entries: 10,
            raw_bytes: size * 4,
            size,
        }
    }

    fn settings(retention: bool) -> PlanSettings {
        PlanSettings {
            retention_enabled: retention,
            delete_delay: Duration::from_secs(7200),
            chunk_target_size: 1000,
            max_merges: 100,
        }
    }

    fn policy(days: u64, rules: &[(&str, i64, u64)]) -> RetentionPolicy {
        RetentionPolicy {
            period: Duration::from_secs(days * DAY as u64),
            rules: rules
                .iter()
                .map(|(sel, prio, d)| StreamRule {
                    matchers: parse_selector(sel).unwrap(),
                    priority: *prio,
                    period: Duration::from_secs(d * DAY as u64),
                })
                .collect(),
        }
    }

    fn tenant(
        name: &str,
        policy: RetentionPolicy,
        streams: Vec<(Labels, Vec<ChunkRef>)>,
    ) -> TenantState {
        let mut days = std::collections::BTreeSet::new();
        for (_, cs) in &streams {
            for c in cs {
                for d in Day::of(c.from).0..=Day::of(c.through).0 {
                    days.insert(Day(d));
                }
            }
        }
        TenantState {
            tenant: TenantId::new(name).unwrap(),
            policy,
            streams: streams
                .into_iter()
                .map(|(labels, chunks)| IndexedStream {
                    id: labels.stream_id(),
                    labels,
                    chunks,
                })
                .collect(),
            partitions: days.into_iter().map(|d| (d, 1)).collect(),
        }
    }

    fn run(
        now_s: i64,
        tenants: &[TenantState],
        deletes: &[ReadyDelete],
        waiting: &[Waiting],
        retention: bool,
    ) -> Plan {
        let p = plan(&PlanInput {
            now: Timestamp::from_secs(now_s),
            tenants,
            deletes,
            waiting,
            settings: settings(retention),
        });
        assert!(chunks_are_disjoint(&p), "{p:?}");
        p
    }

    fn expired(p: &Plan) -> Vec<ChunkRef> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Expire { chunk, .. } => Some(*chunk),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn retention_expires_by_through_and_per_stream_rules() {
        let app = labels(r#"{app="api"}"#);
        let dbg = labels(r#"{app="api", level="debug"}"#);
        let c_old = chunk(&app, BASE, BASE + 100, 5000);
        let c_edge = chunk(&app, BASE + DAY, BASE + DAY + 100, 5000);
        let c_dbg = chunk(&dbg, BASE + 3 * DAY, BASE + 3 * DAY + 10, 5000);
        let t = tenant(
            "t",
            policy(7, &[(r#"{level="debug"}"#, 1, 1)]),
            vec![
                (app.clone(), vec![c_old, c_edge]),
                (dbg.clone(), vec![c_dbg]),
            ],
        );
        // now - through of c_edge is exactly 7 days: not expired (strictly greater).
        let now = BASE + DAY + 100 + 7 * DAY;
        let p = run(now, std::slice::from_ref(&t), &[], &[], true);
        assert_eq!(expired(&p), vec![c_old, c_dbg]);
        let p = run(now + 1, std::slice::from_ref(&t), &[], &[], true);
        assert_eq!(expired(&p), vec![c_old, c_edge, c_dbg]);
        // Retention disabled: nothing expires and nothing is dropped.
        let p = run(now + 1, std::slice::from_ref(&t), &[], &[], false);
        assert!(expired(&p).is_empty());
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::DropPartition { .. }))
        );
        // Delete delay.
        if let Some(Action::Expire { due, .. }) = p.actions.first() {
            assert_eq!(due.secs(), now + 1 + 7200);
        }
    }

    #[test]
    fn partitions_drop_after_the_longest_period_and_past_days_merge() {
        let app = labels(r#"{app="api"}"#);
        let across = chunk(&app, BASE + DAY - 10, BASE + DAY + 10, 5000);
        let mut t = tenant(
            "t",
            policy(2, &[(r#"{app="keep"}"#, 0, 5)]),
            vec![(app, vec![across])],
        );
        t.partitions = vec![(Day(20_000), 3), (Day(20_001), 4), (Day(20_009), 5)];
        let drops = |p: &Plan| -> Vec<Day> {
            p.actions
                .iter()
                .filter_map(|a| match a {
                    Action::DropPartition { day, .. } => Some(*day),
                    _ => None,
                })
                .collect()
        };
        let merges = |p: &Plan| -> Vec<Day> {
            p.actions
                .iter()
                .filter_map(|a| match a {
                    Action::MergeIndex { day, .. } => Some(*day),
                    _ => None,
                })
                .collect()
        };
        // 5 days (the longest rule) after the end of day 20_000: dropped; day 20_001 not yet.
        let now = BASE + DAY + 5 * DAY;
        let p = run(now, std::slice::from_ref(&t), &[], &[], true);
        assert_eq!(drops(&p), vec![Day(20_000)]);
        assert_eq!(
            merges(&p),
            vec![Day(20_001)],
            "today's partition is left alone"
        );
        assert_eq!(
            expired(&p).len(),
            1,
            "the chunk across midnight is past 2 days"
        );
        // Forever for some stream: never dropped.
        t.policy = policy(0, &[]);
        let p = run(now + 100 * DAY, std::slice::from_ref(&t), &[], &[], true);
        assert!(drops(&p).is_empty());
    }

    fn delete(tenant: &str, sel: &str, filter: bool, start_s: i64, end_s: i64) -> ReadyDelete {
        ReadyDelete {
            request_id: "r".into(),
            shard: 0,
            tenant: TenantId::new(tenant).unwrap(),
            matchers: parse_selector(sel).unwrap(),
            has_filter: filter,
            start: Timestamp::from_secs(start_s),
            end: Timestamp::from_secs(end_s),
        }
    }

    #[test]
    fn deletes_remove_covered_chunks_and_rewrite_partial_ones() {
        let a = labels(r#"{app="a"}"#);
        let b = labels(r#"{app="b"}"#);
        let inside = chunk(&a, BASE + 100, BASE + 200, 5000);
        let partial = chunk(&a, BASE + 250, BASE + 400, 5000);
        let outside = chunk(&a, BASE + 500, BASE + 600, 5000);
        let other = chunk(&b, BASE + 100, BASE + 200, 5000);
        let t = tenant(
            "t",
            policy(0, &[]),
            vec![
                (a.clone(), vec![inside, partial, outside]),
                (b, vec![other]),
            ],
        );
        let ds = [
            delete("t", r#"{app="a"}"#, false, BASE + 100, BASE + 300),
            delete("t", r#"{app=~"a|b"}"#, true, BASE + 150, BASE + 160),
            delete("other", r#"{app="a"}"#, false, BASE, BASE + 1000),
        ];
        let p = run(BASE + 10 * DAY, std::slice::from_ref(&t), &ds, &[], true);
        let mut rewrites = Vec::new();
        let mut deleted = Vec::new();
        for a in &p.actions {
            match a {
                Action::Delete { chunk, by, .. } => deleted.push((*chunk, *by)),
                Action::Rewrite { chunk, by, .. } => rewrites.push((*chunk, by.clone())),
                _ => {}
            }
        }
        assert_eq!(deleted, vec![(inside, 0)], "a covered chunk goes whole");
        assert_eq!(rewrites, vec![(partial, vec![0]), (other, vec![1])]);
        let marked: Vec<usize> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::MarkProcessed { by } => Some(*by),
                _ => None,
            })
            .collect();
        assert_eq!(
            marked,
            vec![0, 1, 2],
            "shards with nothing to do are processed too"
        );
        // The line-filter request alone rewrites the covered chunk instead.
        let p = run(
            BASE + 10 * DAY,
            std::slice::from_ref(&t),
            &ds[1..2],
            &[],
            true,
        );
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, Action::Rewrite { chunk, .. } if *chunk == inside))
        );
    }

    #[test]
    fn small_chunks_of_a_stream_merge_within_a_day() {
        let a = labels(r#"{app="a"}"#);
        let cs = vec![
            chunk(&a, BASE + 10, BASE + 20, 300),
            chunk(&a, BASE + 30, BASE + 40, 300),
            chunk(&a, BASE + 50, BASE + 60, 300),
            chunk(&a, BASE + 70, BASE + 80, 300), // would exceed 1000 with the first three
            chunk(&a, BASE + 90, BASE + 95, 600), // not small (>= target / 2)
            chunk(&a, BASE + 100, BASE + 110, 100),
            chunk(&a, BASE + DAY + 10, BASE + DAY + 20, 100), // alone on its day
            chunk(&a, BASE + 2 * DAY - 5, BASE + 2 * DAY + 5, 100), // across midnight
        ];
        let t = tenant("t", policy(0, &[]), vec![(a, cs.clone())]);
        let p = run(BASE + 30 * DAY, std::slice::from_ref(&t), &[], &[], true);
        let groups: Vec<Vec<ChunkRef>> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Merge { chunks, .. } => Some(chunks.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(groups, vec![vec![cs[0], cs[1], cs[2]], vec![cs[3], cs[5]]]);
        // The merge budget bounds a run.
        let mut small = plan(&PlanInput {
            now: Timestamp::from_secs(BASE + 30 * DAY),
            tenants: std::slice::from_ref(&t),
            deletes: &[],
            waiting: &[],
            settings: PlanSettings {
                max_merges: 1,
                ..settings(true)
            },
        });
        small.actions.retain(|a| matches!(a, Action::Merge { .. }));
        assert_eq!(small.actions.len(), 1);
    }

    #[test]
    fn waiting_deletions_run_when_due_and_lag_reports_the_backlog() {
        let a = labels(r#"{app="a"}"#);
        let c = chunk(&a, BASE, BASE + 100, 5000);
        let w = [
            Waiting {
                tenant: TenantId::new("t").unwrap(),
                chunk: c,
                due: Timestamp::from_secs(BASE + 50),
            },
            Waiting {
                tenant: TenantId::new("t").unwrap(),
                chunk: chunk(&a, BASE + 1, BASE + 2, 1),
                due: Timestamp::from_secs(BASE + 5000),
            },
        ];
        let p = run(BASE + 50, &[], &[], &w, true);
        assert_eq!(
            p.actions,
            vec![Action::DeleteObject {
                tenant: TenantId::new("t").unwrap(),
                chunk: c
            }]
        );
        // On time: the due deletion is not overdue yet.
        assert_eq!(p.retention_lag, Duration::ZERO);
        // Overdue deletions are a backlog: 300 s past the first's due time.
        let p = run(BASE + 350, &[], &[], &w, true);
        assert_eq!(p.retention_lag, Duration::from_secs(300));
        // A retained chunk whose start is older than its period is not late
        // (retention expires by a chunk's end).
        let t = tenant("t", policy(1, &[]), vec![(a.clone(), vec![c])]);
        let p = run(BASE + DAY + 60, std::slice::from_ref(&t), &[], &[], true);
        assert!(expired(&p).is_empty());
        assert_eq!(p.retention_lag, Duration::ZERO);
        // Chunks still indexed past their period are the backlog, measured
        // before the plan expires them: the worst is 1000 s late.
        let old = chunk(&a, BASE, BASE + 10, 5000);
        let newer = chunk(&a, BASE + 500, BASE + 510, 5000);
        let t = tenant("t", policy(1, &[]), vec![(a.clone(), vec![old, newer])]);
        let p = run(
            BASE + 10 + DAY + 1000,
            std::slice::from_ref(&t),
            &[],
            &w,
            true,
        );
        assert_eq!(expired(&p), vec![old, newer]);
        assert_eq!(
            p.retention_lag,
            Duration::from_secs(DAY as u64 + 960),
            "the deletion due at BASE+50 is later than the chunks"
        );
        let p = run(
            BASE + 10 + DAY + 1000,
            std::slice::from_ref(&t),
            &[],
            &[],
            true,
        );
        assert_eq!(p.retention_lag, Duration::from_secs(1000));
        // Retention off: nothing is late.
        let p = run(
            BASE + 10 + DAY + 1000,
            std::slice::from_ref(&t),
            &[],
            &[],
            false,
        );
        assert_eq!(p.retention_lag, Duration::ZERO);
        let m = Matcher::new("app", MatchOp::Eq, "a").unwrap();
        assert!(m.matches_labels(&a));
    }
}
