//! `GET /loki/api/v1/tail` (and legacy `/api/prom/tail`): live tail over a
//! WebSocket, as Loki's querier serves it (`pkg/querier/tail/http.go`,
//! `tail.go`, `querier.go`).
//!
//! Owns: the tail parameters (`query`, `limit`, `start`/`since`,
//! `delay_for`), the session — replay of history through the engine, then
//! live entries from the store's [`TailFeed`] run through the query's
//! pipeline — the frame shapes, pings, close codes and time limit.
//!
//! Does not own: which entries reach the session (the feed matches stream
//! selectors and drops when the session falls behind), nor query evaluation
//! (the replay is an ordinary backward log query).
//!
//! Protocol, as Loki:
//! - Bad parameters are refused before the upgrade with 400 and Loki's
//!   text; everything after the upgrade (tail limit, query limits, storage
//!   errors, the time limit) closes the socket with 1011 and the reason.
//! - Frames are `{"streams":[{"stream":{..},"values":[["<ns>","<line>"]]},..],
//!   "dropped_entries":[{"timestamp":"<ns>","labels":{..}}]}`: one stream
//!   object per entry, at most 100 entries per frame, `dropped_entries`
//!   only when something was dropped; with `categorize-labels` each value
//!   is a triple and `"encodingFlags":["categorize-labels"]` ends the frame.
//! - History first: the newest `limit` entries of `[start, now)`, oldest
//!   first. Then live entries.
//! - `delay_for` (0–5 s): an entry is sent once `now` is past its timestamp
//!   plus the delay; until then it waits in a buffer ordered by timestamp,
//!   so entries that arrive late (within the delay) are sorted in. As in
//!   Loki, entries stamped in the future wait until their time.
//! - A ping every second; a client close ends the session.
//!
//! Invariants: an entry is sent only once the WAL holds it durably; an
//! entry replayed from history is not sent again live; a session's memory
//! is bounded (the feed's queue, [`MAX_PENDING`] entries waiting for their
//! time); sending never holds up ingestion (the feed drops instead).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};

use super::encode::{write_labels, write_str};
use super::params::{self, ParamError, Params};
use super::query::request_params;
use super::{ApiError, SharedState};
use crate::logql::eval::{self, QueryParams};
use crate::logql::log::{LabelsResult, Pipeline, StreamPipeline};
use crate::logql::result::{QueryData, StreamResult};
use crate::logql::syntax::{self, ast};
use crate::model::{Direction, Labels, StreamId, TenantId, Timestamp};
use crate::store::tail::{DEFAULT_QUEUE_ENTRIES, DroppedEntry, TailDelivery, TailRequest};
use crate::store::wal::Lsn;

/// Loki's `maxDelayForInTailing`.
pub const MAX_DELAY_FOR_SECS: i64 = 5;
/// Loki's `maxEntriesPerTailResponse`.
pub const MAX_ENTRIES_PER_FRAME: usize = 100;
/// Loki's `wsPingPeriod`.
pub const PING_PERIOD: Duration = Duration::from_secs(1);
/// Entries a session holds while they wait for their `delay_for`; past it,
/// the oldest go out early rather than growing memory.
pub const MAX_PENDING: usize = 10_000;
/// A frame (or ping) the client does not take within this time ends the
/// session: the client is gone or stuck.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket close frames carry at most 123 bytes of reason.
const MAX_CLOSE_REASON: usize = 123;
/// Close code for errors (`CloseInternalServerErr`).
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// The tail request's parameters, validated as Loki's `ParseTailQuery`.
#[derive(Debug, Clone)]
pub struct TailParams {
    pub query: String,
    pub expr: ast::Expr,
    pub limit: usize,
    pub start: Timestamp,
    pub delay_for: Duration,
}

/// Parses `query`, `limit`, `start`/`since` and `delay_for` in Loki's
/// order, with Loki's messages.
pub fn tail_params(p: &Params, now: Timestamp) -> Result<TailParams, ParamError> {
    let query = p.get("query").unwrap_or("").to_string();
    let expr = syntax::parse(&query).map_err(|e| ParamError(e.to_string()))?;
    let limit = params::limit(p)?;
    let (start, _) = params::bounds(p, now)?;
    let delay = match p.get("delay_for") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ParamError(format!("strconv.Atoi: parsing \"{v}\": invalid syntax")))?,
    };
    // Loki converts to uint32, so a negative value is a huge one.
    if !(0..=MAX_DELAY_FOR_SECS).contains(&delay) {
        return Err(ParamError(format!(
            "delay_for can't be greater than {MAX_DELAY_FOR_SECS}"
        )));
    }
    Ok(TailParams {
        query,
        expr,
        limit,
        start,
        delay_for: Duration::from_secs(delay as u64),
    })
}

/// Which frame shape a session writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// `/loki/api/v1/tail`.
    V1 { categorize: bool },
    /// `/api/prom/tail`: `{"streams":[{"labels":"{..}","entries":[{"ts":
    /// "<RFC 3339>","line":".."}]}],"dropped_entries":[{"Timestamp":..,
    /// "Labels":".."}]}` (`null` when none, as Go encodes a nil slice).
    Legacy,
}

pub async fn tail(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ws: WsUpgrade,
) -> Response {
    let categorize = super::query::categorize(&headers);
    start(st, headers, q, ws, FrameFormat::V1 { categorize }).await
}

pub async fn tail_legacy(
    State(st): State<SharedState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ws: WsUpgrade,
) -> Response {
    start(st, headers, q, ws, FrameFormat::Legacy).await
}

/// The upgrade, or why the request is not one (answered only after the
/// parameters were checked, as Loki does).
pub struct WsUpgrade(Result<WebSocketUpgrade, Response>);

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(WsUpgrade(
            WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ApiError::bad_request(format!(
                        "websocket: the client is not using the websocket protocol: {}",
                        rejection.body_text()
                    ))
                    .into_response()
                }),
        ))
    }
}

async fn start(
    st: SharedState,
    headers: HeaderMap,
    q: Option<String>,
    ws: WsUpgrade,
    format: FrameFormat,
) -> Response {
    let tenant = match st.tenant(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let p = request_params(q, &headers, &Bytes::new());
    let params = match tail_params(&p, Timestamp::now()) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let ws = match ws.0 {
        Ok(ws) => ws,
        Err(resp) => return resp,
    };
    ws.on_upgrade(move |socket| async move {
        let query = params.query.clone();
        tracing::info!(tenant = %tenant, query = %query, "starting to tail logs");
        run(st, socket, tenant.clone(), params, format).await;
        tracing::info!(tenant = %tenant, query = %query, "ended tailing logs");
    })
}

/// Why a session ended.
enum End {
    /// The client closed or went away.
    Client,
    /// The client stopped taking frames (a write timed out): it is sent a
    /// last `dropped_entries` notice for what it will never get, then the
    /// socket is closed.
    Stuck,
    /// Close with 1011 and this reason.
    Error(String),
}

async fn run(
    st: SharedState,
    socket: WebSocket,
    tenant: TenantId,
    params: TailParams,
    format: FrameFormat,
) {
    let (mut sink, mut stream) = socket.split();
    // The reader only watches for the client's close (or a dead socket);
    // the protocol has nothing else for the client to say.
    let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            if matches!(msg, Err(_) | Ok(Message::Close(_))) {
                break;
            }
        }
        let _ = closed_tx.send(());
    });
    let end = match Session::open(&st, &tenant, &params, format).await {
        Ok(mut session) => {
            let end = session.serve(&st, &mut sink, &mut closed_rx).await;
            if matches!(end, End::Stuck) {
                tracing::warn!(tenant = %tenant, "tail client stopped reading; closing it");
                session.send_final_notice(&mut sink).await;
            }
            end
        }
        Err(msg) => End::Error(msg),
    };
    if let End::Error(reason) = end {
        tracing::warn!(tenant = %tenant, error = %reason, "tail ended with an error");
        let frame = CloseFrame {
            code: CLOSE_INTERNAL_ERROR,
            reason: truncate(&reason, MAX_CLOSE_REASON).into(),
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
    reader.abort();
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Labels of one line to send.
#[derive(Debug, Clone)]
enum LineLabels {
    /// A live entry: the pipeline's result.
    Live(Arc<LabelsResult>),
    /// A replayed entry: what the engine returned.
    Replayed {
        stream: Arc<Labels>,
        metadata: Labels,
        parsed: Labels,
    },
}

impl LineLabels {
    /// The labels the frame's `stream` shows.
    fn shown(&self, categorize: bool) -> &Labels {
        match self {
            LineLabels::Live(r) if categorize => r.stream(),
            LineLabels::Live(r) => r.labels(),
            LineLabels::Replayed { stream, .. } => stream,
        }
    }

    fn metadata(&self) -> &Labels {
        match self {
            LineLabels::Live(r) => r.structured_metadata(),
            LineLabels::Replayed { metadata, .. } => metadata,
        }
    }

    fn parsed(&self) -> &Labels {
        match self {
            LineLabels::Live(r) => r.parsed(),
            LineLabels::Replayed { parsed, .. } => parsed,
        }
    }
}

/// A line waiting for its time.
#[derive(Debug)]
struct Pending {
    ts: Timestamp,
    seq: u64,
    line: Bytes,
    labels: LineLabels,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

/// Identity of a replayed line, to skip it when it also arrives live.
type LineKey = (i64, u64, u64);

fn line_key(ts: Timestamp, shown: &Labels, line: &[u8]) -> LineKey {
    (
        ts.nanos(),
        xxhash_rust::xxh3::xxh3_64(shown.canonical().as_bytes()),
        xxhash_rust::xxh3::xxh3_64(line),
    )
}

/// One tail: its subscription, pipeline and the lines waiting to go out.
struct Session {
    sub: crate::store::tail::TailSubscription,
    pipeline: Pipeline,
    streams: HashMap<StreamId, StreamPipeline>,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    delay_ns: i64,
    format: FrameFormat,
    replayed: HashSet<LineKey>,
    replayed_max: Timestamp,
    dropped: Vec<DroppedEntry>,
    max_duration: Duration,
}

impl Session {
    fn new(
        sub: crate::store::tail::TailSubscription,
        pipeline: Pipeline,
        delay_for: Duration,
        format: FrameFormat,
        max_duration: Duration,
    ) -> Session {
        Session {
            sub,
            pipeline,
            streams: HashMap::new(),
            pending: BinaryHeap::new(),
            seq: 0,
            delay_ns: i64::try_from(delay_for.as_nanos()).unwrap_or(i64::MAX),
            format,
            replayed: HashSet::new(),
            replayed_max: Timestamp::MIN,
            dropped: Vec::new(),
            max_duration,
        }
    }

    /// Subscribes (the tenant's tail limit), then replays history; live
    /// entries appended meanwhile wait in the subscription.
    async fn open(
        st: &SharedState,
        tenant: &TenantId,
        params: &TailParams,
        format: FrameFormat,
    ) -> Result<Session, String> {
        let ast::Expr::Log(log) = &params.expr else {
            return Err("only log selector is supported".to_string());
        };
        let pipeline = eval::log_pipeline(log).map_err(|e| e.to_string())?;
        let limits = st.overrides.get(tenant.as_str());
        let sub = st
            .store
            .tail_feed()
            .subscribe(TailRequest {
                tenant: tenant.clone(),
                matchers: log.matchers().to_vec(),
                queue_entries: DEFAULT_QUEUE_ENTRIES,
                max_per_tenant: limits.max_concurrent_tail_requests,
            })
            .map_err(|e| e.to_string())?;
        let categorize = matches!(format, FrameFormat::V1 { categorize: true });
        let mut session = Session::new(
            sub,
            pipeline,
            params.delay_for,
            format,
            st.config.querier.tail_max_duration,
        );
        let now = Timestamp::now();
        let resp = st
            .engine
            .execute(QueryParams {
                tenant: tenant.clone(),
                query: params.query.clone(),
                start: params.start,
                end: now,
                step: 0,
                interval: 0,
                limit: params.limit,
                direction: Direction::Backward,
                instant: false,
                categorize,
                drilldown: false,
            })
            .await
            .map_err(|e| e.to_string())?;
        if let QueryData::Streams(streams) = resp.data {
            session.add_history(streams);
        }
        Ok(session)
    }

    /// Queues the replayed history and remembers it, so the same lines
    /// arriving live are not sent twice.
    fn add_history(&mut self, streams: Vec<StreamResult>) {
        for s in streams {
            let shown = Arc::new(s.labels);
            for e in s.entries {
                self.replayed.insert(line_key(e.ts, &shown, &e.line));
                self.replayed_max = self.replayed_max.max(e.ts);
                self.seq += 1;
                self.pending.push(Reverse(Pending {
                    ts: e.ts,
                    seq: self.seq,
                    line: e.line,
                    labels: LineLabels::Replayed {
                        stream: Arc::clone(&shown),
                        metadata: e.structured_metadata,
                        parsed: e.parsed,
                    },
                }));
            }
        }
        // Equal timestamps of different streams: order by labels, then as
        // the engine returned them.
        self.resequence_replay();
    }

    /// Gives replayed lines of equal timestamps a label order (the engine
    /// groups by stream, so its order says nothing across streams).
    fn resequence_replay(&mut self) {
        let categorize = self.categorize();
        let mut all: Vec<Pending> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|r| r.0)
            .collect();
        all.sort_by(|a, b| {
            a.ts.cmp(&b.ts)
                .then_with(|| a.labels.shown(categorize).cmp(b.labels.shown(categorize)))
                .then(a.seq.cmp(&b.seq))
        });
        for (i, p) in all.iter_mut().enumerate() {
            p.seq = i as u64;
        }
        self.seq = all.len() as u64;
        self.pending = all.into_iter().map(Reverse).collect();
    }

    fn categorize(&self) -> bool {
        matches!(self.format, FrameFormat::V1 { categorize: true })
    }

    async fn serve<S>(
        &mut self,
        st: &SharedState,
        sink: &mut S,
        closed: &mut tokio::sync::oneshot::Receiver<()>,
    ) -> End
    where
        S: futures::Sink<Message, Error = axum::Error> + Unpin,
    {
        let mut ping = tokio::time::interval(PING_PERIOD);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let deadline = tokio::time::sleep(self.max_duration);
        tokio::pin!(deadline);
        loop {
            if let Err(end) = self.send_due(sink).await {
                return end;
            }
            let wait = self.next_due_in();
            tokio::select! {
                biased;
                _ = &mut *closed => return End::Client,
                () = &mut deadline => {
                    return End::Error("reached tail max duration limit".to_string());
                }
                delivery = self.sub.recv() => {
                    if let Err(e) = self.take(st, delivery).await {
                        return End::Error(e);
                    }
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Bytes::new()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Client,
                        Err(_) => return End::Stuck,
                    }
                }
                () = tokio::time::sleep(wait.unwrap_or(Duration::ZERO)), if wait.is_some() => {}
            }
        }
    }

    /// Runs a delivery's entries through the pipeline into the pending
    /// buffer, once the WAL holds them durably.
    async fn take(&mut self, st: &SharedState, delivery: TailDelivery) -> Result<(), String> {
        if let Some(lsn) = delivery.batches.iter().map(|b| b.lsn()).max()
            && lsn > Lsn(0)
        {
            st.store
                .wait_durable(lsn)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.absorb(delivery);
        Ok(())
    }

    /// The pure part of [`Session::take`]: pipeline, replay dedup, pending
    /// buffer, drop reports.
    fn absorb(&mut self, delivery: TailDelivery) {
        let categorize = self.categorize();
        let pipeline = &self.pipeline;
        for batch in &delivery.batches {
            let sp = self
                .streams
                .entry(batch.stream_id())
                .or_insert_with(|| pipeline.for_stream(batch.labels()));
            for e in batch.entries() {
                let Some(out) = sp.process(e.ts, &e.line, &e.metadata) else {
                    continue;
                };
                let line = if out.line_changed {
                    Bytes::copy_from_slice(out.line)
                } else {
                    e.line.clone()
                };
                let labels = LineLabels::Live(out.labels);
                if e.ts <= self.replayed_max
                    && self
                        .replayed
                        .contains(&line_key(e.ts, labels.shown(categorize), &line))
                {
                    continue;
                }
                self.seq += 1;
                self.pending.push(Reverse(Pending {
                    ts: e.ts,
                    seq: self.seq,
                    line,
                    labels,
                }));
            }
        }
        let room = crate::store::tail::MAX_DROPPED_REPORTED.saturating_sub(self.dropped.len());
        self.dropped.extend(delivery.dropped.into_iter().take(room));
    }

    /// How long until the oldest pending line is due (`None`: nothing waits).
    fn next_due_in(&self) -> Option<Duration> {
        let oldest = self.pending.peek()?.0.ts;
        let due = oldest.saturating_add_nanos(self.delay_ns);
        let now = Timestamp::now();
        Some(Duration::from_nanos(due.nanos_since(now).max(0) as u64))
    }

    /// The last frame to a client that stopped reading: every line still
    /// waiting, and the drops not yet reported, as `dropped_entries` (at
    /// most [`MAX_DROPPED_REPORTED`](crate::store::tail::MAX_DROPPED_REPORTED)).
    /// It is queued behind what the socket already holds, so a client that
    /// resumes reading gets it before the close.
    async fn send_final_notice<S>(&mut self, sink: &mut S)
    where
        S: futures::Sink<Message> + Unpin,
    {
        let categorize = self.categorize();
        let mut dropped = std::mem::take(&mut self.dropped);
        let room = crate::store::tail::MAX_DROPPED_REPORTED.saturating_sub(dropped.len());
        dropped.extend(
            std::mem::take(&mut self.pending)
                .into_sorted_vec()
                .into_iter()
                .rev()
                .take(room)
                .map(|Reverse(p)| DroppedEntry {
                    labels: Arc::new(p.labels.shown(categorize).clone()),
                    ts: p.ts,
                }),
        );
        if dropped.is_empty() {
            return;
        }
        let text = encode_frame(&[], &dropped, self.format);
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(text.into()))).await;
    }

    /// Sends every due line (and pending drop reports) in frames of at most
    /// [`MAX_ENTRIES_PER_FRAME`].
    async fn send_due<S>(&mut self, sink: &mut S) -> Result<(), End>
    where
        S: futures::Sink<Message> + Unpin,
    {
        loop {
            let now = Timestamp::now();
            let mut frame: Vec<Pending> = Vec::new();
            while frame.len() < MAX_ENTRIES_PER_FRAME {
                let Some(Reverse(top)) = self.pending.peek() else {
                    break;
                };
                let due = top.ts.saturating_add_nanos(self.delay_ns) < now;
                if !due && self.pending.len() <= MAX_PENDING {
                    break;
                }
                if let Some(Reverse(p)) = self.pending.pop() {
                    frame.push(p);
                }
            }
            if frame.is_empty() && self.dropped.is_empty() {
                return Ok(());
            }
            let dropped = std::mem::take(&mut self.dropped);
            let text = encode_frame(&frame, &dropped, self.format);
            match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(text.into()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(End::Client),
                Err(_) => return Err(End::Stuck),
            }
            if frame.len() < MAX_ENTRIES_PER_FRAME {
                return Ok(());
            }
        }
    }
}

fn write_ns(out: &mut Vec<u8>, ts: Timestamp) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "\"{}\"", ts.nanos());
}

/// One frame in the session's shape.
fn encode_frame(lines: &[Pending], dropped: &[DroppedEntry], format: FrameFormat) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(256 + lines.len() * 128);
    match format {
        FrameFormat::V1 { categorize } => {
            out.extend_from_slice(b"{\"streams\":[");
            for (i, p) in lines.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"stream\":");
                write_labels(&mut out, p.labels.shown(categorize));
                out.extend_from_slice(b",\"values\":[[");
                write_ns(&mut out, p.ts);
                out.push(b',');
                write_str(&mut out, &String::from_utf8_lossy(&p.line));
                if categorize {
                    out.extend_from_slice(b",{");
                    let (sm, parsed) = (p.labels.metadata(), p.labels.parsed());
                    if !sm.is_empty() {
                        out.extend_from_slice(b"\"structuredMetadata\":");
                        write_labels(&mut out, sm);
                    }
                    if !parsed.is_empty() {
                        if !sm.is_empty() {
                            out.push(b',');
                        }
                        out.extend_from_slice(b"\"parsed\":");
                        write_labels(&mut out, parsed);
                    }
                    out.push(b'}');
                }
                out.extend_from_slice(b"]]}");
            }
            out.push(b']');
            if !dropped.is_empty() {
                out.extend_from_slice(b",\"dropped_entries\":[");
                for (i, d) in dropped.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"timestamp\":");
                    write_ns(&mut out, d.ts);
                    if !d.labels.is_empty() {
                        out.extend_from_slice(b",\"labels\":");
                        write_labels(&mut out, &d.labels);
                    }
                    out.push(b'}');
                }
                out.push(b']');
            }
            if categorize {
                out.extend_from_slice(b",\"encodingFlags\":[\"categorize-labels\"]");
            }
            out.push(b'}');
        }
        FrameFormat::Legacy => {
            out.extend_from_slice(b"{\"streams\":[");
            for (i, p) in lines.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"labels\":");
                write_str(&mut out, &p.labels.shown(false).to_string());
                out.extend_from_slice(b",\"entries\":[{\"ts\":");
                write_str(&mut out, &p.ts.to_rfc3339_nano());
                out.extend_from_slice(b",\"line\":");
                write_str(&mut out, &String::from_utf8_lossy(&p.line));
                out.extend_from_slice(b"}]}");
            }
            out.extend_from_slice(b"],\"dropped_entries\":");
            if dropped.is_empty() {
                out.extend_from_slice(b"null");
            } else {
                out.push(b'[');
                for (i, d) in dropped.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"Timestamp\":");
                    write_str(&mut out, &d.ts.to_rfc3339_nano());
                    out.extend_from_slice(b",\"Labels\":");
                    write_str(&mut out, &d.labels.to_string());
                    out.push(b'}');
                }
                out.push(b']');
            }
            out.push(b'}');
        }
    }
    // Every piece above is valid UTF-8 (lines go through a lossy decode).
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), None)
    }

    #[test]
    fn parameters_parse_like_loki() {
        let now = Timestamp::from_secs(10_000);
        let p = tail_params(&params("query=%7Ba%3D%22b%22%7D"), now).unwrap();
        assert_eq!(
            (p.limit, p.start.secs(), p.delay_for),
            (100, 6400, Duration::ZERO)
        );
        let p = tail_params(
            &params("query=%7Ba%3D%22b%22%7D&limit=7&start=9000&delay_for=5"),
            now,
        )
        .unwrap();
        assert_eq!(
            (p.limit, p.start.secs(), p.delay_for.as_secs()),
            (7, 9000, 5)
        );
        let p = tail_params(&params("query=%7Ba%3D%22b%22%7D&since=5m"), now).unwrap();
        assert_eq!(p.start.secs(), 9700);
        let e = |q: &str| tail_params(&params(q), now).unwrap_err().0;
        assert_eq!(
            e("query=%7Ba%3D%22b%22%7D&delay_for=6"),
            "delay_for can't be greater than 5"
        );
        assert_eq!(
            e("query=%7Ba%3D%22b%22%7D&delay_for=-1"),
            "delay_for can't be greater than 5"
        );
        assert_eq!(
            e("query=%7Ba%3D%22b%22%7D&delay_for=x"),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            e("query=%7Ba%3D%22b%22%7D&limit=0"),
            "limit must be a positive value"
        );
        assert!(e("query=%7Ba%3D").starts_with("parse error"));
        assert!(e("query=%7Ba%3D%22b%22%7D&limit=0&delay_for=9").starts_with("limit"));
    }

    fn live(labels: &str, ts: i64, line: &str) -> Pending {
        let l = Labels::parse(labels).unwrap();
        let mut sp = Pipeline::default().for_stream(&l);
        let out = sp
            .process(Timestamp::from_nanos(ts), line.as_bytes(), &[])
            .unwrap();
        Pending {
            ts: Timestamp::from_nanos(ts),
            seq: 0,
            line: Bytes::copy_from_slice(line.as_bytes()),
            labels: LineLabels::Live(out.labels),
        }
    }

    #[test]
    fn frames_have_loki_shapes() {
        let lines = [
            live(r#"{app="a"}"#, 5, "one"),
            live(r#"{app="b"}"#, 6, "t\"wo"),
        ];
        let dropped = [DroppedEntry {
            labels: Arc::new(Labels::parse(r#"{app="a"}"#).unwrap()),
            ts: Timestamp::from_nanos(9),
        }];
        let v1 = encode_frame(&lines, &[], FrameFormat::V1 { categorize: false });
        assert_eq!(
            v1,
            r#"{"streams":[{"stream":{"app":"a"},"values":[["5","one"]]},{"stream":{"app":"b"},"values":[["6","t\"wo"]]}]}"#
        );
        let v1 = encode_frame(&lines[..1], &dropped, FrameFormat::V1 { categorize: true });
        assert_eq!(
            v1,
            r#"{"streams":[{"stream":{"app":"a"},"values":[["5","one",{}]]}],"dropped_entries":[{"timestamp":"9","labels":{"app":"a"}}],"encodingFlags":["categorize-labels"]}"#
        );
        let only_drops = encode_frame(&[], &dropped, FrameFormat::V1 { categorize: false });
        let v: serde_json::Value = serde_json::from_str(&only_drops).unwrap();
        assert_eq!(v["streams"], serde_json::json!([]));
        let legacy = encode_frame(&lines[..1], &[], FrameFormat::Legacy);
        assert_eq!(
            legacy,
            r#"{"streams":[{"labels":"{app=\"a\"}","entries":[{"ts":"1970-01-01T00:00:00.000000005Z","line":"one"}]}],"dropped_entries":null}"#
        );
    }

    use crate::logql::result::ResultEntry;
    use crate::model::Entry;
    use crate::store::tail::TailFeed;

    fn session(feed: &Arc<TailFeed>, query: &str, delay_secs: u64, queue: usize) -> Session {
        let log = syntax::parse_log_selector(query, true).unwrap();
        let sub = feed
            .subscribe(TailRequest {
                tenant: TenantId::new("t").unwrap(),
                matchers: log.matchers().to_vec(),
                queue_entries: queue,
                max_per_tenant: 10,
            })
            .unwrap();
        Session::new(
            sub,
            eval::log_pipeline(&log).unwrap(),
            Duration::from_secs(delay_secs),
            FrameFormat::V1 { categorize: false },
            Duration::from_secs(3600),
        )
    }

    fn publish(feed: &TailFeed, labels: &str, entries: &[(i64, &str)]) {
        let l = Labels::parse(labels).unwrap();
        let entries = entries
            .iter()
            .map(|(ts, line)| Entry::new(Timestamp::from_nanos(*ts), line.to_string()))
            .collect();
        feed.publish(
            &TenantId::new("t").unwrap(),
            &l,
            l.stream_id(),
            entries,
            Lsn(1),
        );
    }

    fn publish_owned(feed: &TailFeed, labels: &str, entries: Vec<(i64, String)>) {
        let l = Labels::parse(labels).unwrap();
        let entries = entries
            .into_iter()
            .map(|(ts, line)| Entry::new(Timestamp::from_nanos(ts), line))
            .collect();
        feed.publish(
            &TenantId::new("t").unwrap(),
            &l,
            l.stream_id(),
            entries,
            Lsn(1),
        );
    }

    fn absorb(s: &mut Session) {
        if let Some(d) = s.sub.try_recv() {
            s.absorb(d);
        }
    }

    /// Frames sent now, parsed.
    async fn sent(s: &mut Session) -> Vec<serde_json::Value> {
        let (mut tx, mut rx) = futures::channel::mpsc::unbounded::<Message>();
        assert!(s.send_due(&mut tx).await.is_ok());
        drop(tx);
        let mut out = Vec::new();
        while let Some(m) = rx.next().await {
            if let Message::Text(t) = m {
                out.push(serde_json::from_str(t.as_str()).unwrap());
            }
        }
        out
    }

    fn lines(frames: &[serde_json::Value]) -> Vec<(i64, String)> {
        frames
            .iter()
            .flat_map(|f| f["streams"].as_array().unwrap().clone())
            .map(|s| {
                let v = &s["values"][0];
                (
                    v[0].as_str().unwrap().parse().unwrap(),
                    v[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn history_lines_are_not_sent_again_live() {
        let feed = TailFeed::new();
        let mut s = session(&feed, r#"{app="a"}"#, 0, 100);
        let labels = Labels::parse(r#"{app="a"}"#).unwrap();
        let entry = |ts: i64, line: &str| ResultEntry {
            ts: Timestamp::from_nanos(ts),
            line: Bytes::copy_from_slice(line.as_bytes()),
            structured_metadata: Labels::empty(),
            parsed: Labels::empty(),
        };
        s.add_history(vec![StreamResult {
            labels,
            entries: vec![entry(11, "y"), entry(10, "x")],
        }]);
        // Appended between the subscription and the replay: both in the
        // history and in the feed.
        publish(&feed, r#"{app="a"}"#, &[(11, "y"), (12, "z")]);
        publish(&feed, r#"{app="b"}"#, &[(13, "other stream")]);
        absorb(&mut s);
        let got = lines(&sent(&mut s).await);
        assert_eq!(
            got,
            [
                (10, "x".to_string()),
                (11, "y".to_string()),
                (12, "z".to_string())
            ]
        );
        // A later line equal in text but newer is not a duplicate.
        publish(&feed, r#"{app="a"}"#, &[(20, "y")]);
        absorb(&mut s);
        assert_eq!(lines(&sent(&mut s).await), [(20, "y".to_string())]);
    }

    #[tokio::test]
    async fn frames_hold_at_most_100_lines_in_timestamp_order() {
        let feed = TailFeed::new();
        let mut s = session(&feed, r#"{app=~"a|b"}"#, 0, 1000);
        let even: Vec<(i64, String)> = (0..125).map(|i| (2 * i, format!("a{i}"))).collect();
        let odd: Vec<(i64, String)> = (0..125).map(|i| (2 * i + 1, format!("b{i}"))).collect();
        publish_owned(&feed, r#"{app="a"}"#, even);
        publish_owned(&feed, r#"{app="b"}"#, odd);
        absorb(&mut s);
        let frames = sent(&mut s).await;
        let sizes: Vec<usize> = frames
            .iter()
            .map(|f| f["streams"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        let ts: Vec<i64> = lines(&frames).into_iter().map(|x| x.0).collect();
        assert_eq!(ts, (0..250).collect::<Vec<i64>>(), "merged by timestamp");
    }

    #[tokio::test]
    async fn delay_for_holds_lines_until_their_time() {
        let feed = TailFeed::new();
        let mut s = session(&feed, r#"{app="a"}"#, 5, 100);
        let now = Timestamp::now().nanos();
        publish(
            &feed,
            r#"{app="a"}"#,
            &[(now, "fresh"), (now - 10_000_000_000, "old")],
        );
        absorb(&mut s);
        assert_eq!(
            lines(&sent(&mut s).await),
            [(now - 10_000_000_000, "old".to_string())]
        );
        let wait = s.next_due_in().unwrap();
        assert!(
            wait > Duration::from_secs(4) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
        assert!(sent(&mut s).await.is_empty(), "fresh waits for its delay");
        // Without a delay, only lines stamped in the future wait.
        let mut s = session(&feed, r#"{app="c"}"#, 0, 100);
        publish(
            &feed,
            r#"{app="c"}"#,
            &[(now, "now"), (now + 3_600_000_000_000, "future")],
        );
        absorb(&mut s);
        assert_eq!(lines(&sent(&mut s).await), [(now, "now".to_string())]);
        assert!(s.next_due_in().unwrap() > Duration::from_secs(3000));
    }

    #[tokio::test]
    async fn drops_are_reported_with_the_next_frame() {
        let feed = TailFeed::new();
        let mut s = session(&feed, r#"{app="a"}"#, 0, 2);
        publish(
            &feed,
            r#"{app="a"}"#,
            &[(1, "a"), (2, "b"), (3, "c"), (4, "d")],
        );
        absorb(&mut s);
        let frames = sent(&mut s).await;
        assert_eq!(frames.len(), 1);
        assert_eq!(lines(&frames), [(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(
            frames[0]["dropped_entries"],
            serde_json::json!([
                {"timestamp": "3", "labels": {"app": "a"}},
                {"timestamp": "4", "labels": {"app": "a"}}
            ])
        );
        assert!(sent(&mut s).await.is_empty(), "reported once");
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let t = truncate(&long, MAX_CLOSE_REASON);
        assert!(t.len() <= MAX_CLOSE_REASON && t.is_char_boundary(t.len()));
        assert_eq!(truncate("short", MAX_CLOSE_REASON), "short");
    }
}
