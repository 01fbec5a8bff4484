//! The [`Auditor`]: a bounded queue in front of a writer thread and a sink.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;

use super::{AuditEvent, AuditEventType, Severity, alert::Alerter};

/// Records the queue holds before [`Auditor::record`] starts dropping (and counting) them.
///
/// At a few hundred bytes a record this bounds the audit backlog to a few megabytes, and it
/// absorbs a burst of 1,000 events a second (catalogue L8) for as long as the sink is slow.
pub const AUDIT_QUEUE_CAPACITY: usize = 10_000;

/// How many queued records the writer takes before it flushes the sink: batches writes under
/// load, and bounds how long a record sits in a buffer.
const WRITE_BATCH: usize = 256;

/// Errors of the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit log file could not be opened for appending.
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(#[source] io::Error),
}

/// The result type of this module.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Where records go, one JSON object a line.
#[derive(Debug, Clone)]
pub enum AuditSink {
    /// Standard output (the default for `serve`; not for `stdio`, where stdout is the protocol).
    Stdout,
    /// Standard error (for `stdio` mode, next to the logs).
    Stderr,
    /// A file, appended to, created with mode 0600 on unix (`AUDIT_LOG_FILE`).
    File(PathBuf),
    /// Memory, for tests: each record as a JSON value. See [`MemoryAudit`].
    Memory(Arc<Mutex<Vec<Value>>>),
}

/// Tuning for [`Auditor::start_with`].
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Queue capacity; see [`AUDIT_QUEUE_CAPACITY`].
    pub capacity: usize,
    /// Also emit each record as a `tracing` event with target `audit`, so it shows in the
    /// ordinary logs (filter it out with `audit=off`).
    pub mirror_to_tracing: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            capacity: AUDIT_QUEUE_CAPACITY,
            mirror_to_tracing: true,
        }
    }
}

/// The audit trail's front door: cheap to clone, [`record`](Self::record) never blocks.
///
/// The writer is a dedicated OS thread, not a tokio task: every sink is blocking I/O (a file,
/// a pipe that may be full), and a thread keeps that off the runtime's few workers. The queue
/// is a tokio channel, so recording is a `try_send` and [`flush`](Self::flush) and
/// [`shutdown`](Self::shutdown) can be awaited. When the last clone is dropped the writer
/// drains what is queued and exits.
#[derive(Debug, Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Command>,
    dropped: Arc<AtomicU64>,
    /// Rules that turn high-severity events into webhook alerts (`ALERT_WEBHOOK_URL`).
    alerts: Option<Alerter>,
}

#[derive(Debug)]
enum Command {
    Record(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

impl Auditor {
    /// Opens the sink and starts the writer with the default options.
    pub fn start(sink: AuditSink) -> Result<Self> {
        Self::start_with(sink, AuditOptions::default())
    }

    /// Opens the sink and starts the writer. A file that cannot be opened fails the start: an
    /// audit trail that silently goes nowhere is worse than a server that does not start.
    pub fn start_with(sink: AuditSink, options: AuditOptions) -> Result<Self> {
        let output = Output::open(sink)?;
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            rx,
            output,
            dropped: Arc::clone(&dropped),
            reported: 0,
            write_failures: 0,
            mirror: options.mirror_to_tracing,
        };
        std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(AuditError::Spawn)?;
        Ok(Self {
            tx,
            dropped,
            alerts: None,
        })
    }

    /// The same auditor, also feeding `alerter` with every record.
    #[must_use]
    pub fn with_alerts(mut self, alerter: Alerter) -> Self {
        self.alerts = Some(alerter);
        self
    }

    /// Queues a record. Never blocks, never awaits: when the queue is full (or the writer has
    /// stopped) the record is dropped and counted, and the count is written as an
    /// `audit_overflow` record once there is room.
    pub fn record(&self, event: AuditEvent) {
        if let Some(alerts) = &self.alerts {
            alerts.observe(&event);
        }
        match self.tx.try_send(Command::Record(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("audit_events_dropped_total").increment(1);
                if let Some(alerts) = &self.alerts {
                    alerts.overflow(dropped);
                }
            }
        }
    }

    /// Records dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything recorded before this call is written and the sink flushed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Writes everything recorded so far, flushes the sink and stops the writer. Records made
    /// afterwards, through any clone, are dropped and counted.
    pub async fn shutdown(self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Shutdown(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// Reads the records of an [`AuditSink::Memory`], for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryAudit {
    records: Arc<Mutex<Vec<Value>>>,
}

impl MemoryAudit {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink writing into this store.
    pub fn sink(&self) -> AuditSink {
        AuditSink::Memory(Arc::clone(&self.records))
    }

    /// Every record written so far, oldest first.
    pub fn records(&self) -> Vec<Value> {
        self.lock().clone()
    }

    /// The records of one type, oldest first.
    pub fn of_type(&self, event_type: AuditEventType) -> Vec<Value> {
        self.lock()
            .iter()
            .filter(|r| r["event_type"] == event_type.as_str())
            .cloned()
            .collect()
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Vec<Value>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An open sink.
enum Output {
    Stdout,
    Stderr,
    File(BufWriter<File>),
    Memory(Arc<Mutex<Vec<Value>>>),
}

impl Output {
    fn open(sink: AuditSink) -> Result<Self> {
        Ok(match sink {
            AuditSink::Stdout => Self::Stdout,
            AuditSink::Stderr => Self::Stderr,
            AuditSink::Memory(records) => Self::Memory(records),
            AuditSink::File(path) => {
                let mut options = OpenOptions::new();
                options.create(true).append(true);
                // Security: the trail names users and addresses; only the service reads it.
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options
                    .open(&path)
                    .map_err(|source| AuditError::Open { path, source })?;
                Self::File(BufWriter::new(file))
            }
        })
    }

    fn write(&mut self, event: &AuditEvent) -> io::Result<()> {
        if let Self::Memory(records) = self {
            let value = serde_json::to_value(event)?;
            records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(value);
            return Ok(());
        }
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        match self {
            Self::Stdout => io::stdout().lock().write_all(&line),
            Self::Stderr => io::stderr().lock().write_all(&line),
            Self::File(file) => file.write_all(&line),
            Self::Memory(_) => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout => io::stdout().flush(),
            Self::Stderr => io::stderr().flush(),
            Self::File(file) => file.flush(),
            Self::Memory(_) => Ok(()),
        }
    }
}

/// The writer thread's state.
struct Writer {
    rx: mpsc::Receiver<Command>,
    output: Output,
    dropped: Arc<AtomicU64>,
    /// Drops already reported in an `audit_overflow` record.
    reported: u64,
    write_failures: u64,
    mirror: bool,
}

impl Writer {
    fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut next = Some(first);
            let mut batch = 0;
            while let Some(command) = next.take() {
                match command {
                    Command::Record(event) => self.write(&event),
                    Command::Flush(ack) => {
                        self.flush();
                        let _ = ack.send(());
                    }
                    Command::Shutdown(ack) => {
                        self.stop();
                        let _ = ack.send(());
                        return;
                    }
                }
                self.report_overflow();
                batch += 1;
                if batch < WRITE_BATCH {
                    next = self.rx.try_recv().ok();
                }
            }
            self.flush();
        }
        self.report_overflow();
        self.flush();
    }

    /// Closes the queue (later records are dropped and counted), writes what is still in it,
    /// and flushes.
    fn stop(&mut self) {
        self.rx.close();
        while let Ok(command) = self.rx.try_recv() {
            match command {
                Command::Record(event) => self.write(&event),
                Command::Flush(ack) | Command::Shutdown(ack) => {
                    let _ = ack.send(());
                }
            }
        }
        self.report_overflow();
        self.flush();
    }

    /// Writes an `audit_overflow` record if records were dropped since the last one. Called
    /// after taking a command off the queue, that is as soon as the queue has room again.
    fn report_overflow(&mut self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped <= self.reported {
            return;
        }
        let lost = dropped - self.reported;
        self.reported = dropped;
        let event = AuditEvent::new(
            AuditEventType::AuditOverflow,
            Severity::High,
            format!("{lost} audit records were dropped because the audit queue was full"),
        )
        .extra("audit.dropped", lost)
        .extra("audit.dropped_total", dropped);
        self.write(&event);
    }

    fn write(&mut self, event: &AuditEvent) {
        if self.mirror {
            mirror(event);
        }
        if let Err(error) = self.output.write(event) {
            self.failed(&error);
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.output.flush() {
            self.failed(&error);
        }
    }

    /// Reports a sink failure on the ordinary log, at most at powers of two so a full disk
    /// does not turn into a flood.
    fn failed(&mut self, error: &io::Error) {
        self.write_failures += 1;
        if self.write_failures.is_power_of_two() {
            tracing::error!(
                audit.write_failures = self.write_failures,
                error = %error,
                "cannot write to the audit sink; audit records are being lost"
            );
        }
    }
}

/// Emits a record as a `tracing` event (target `audit`), at a level following its severity.
fn mirror(event: &AuditEvent) {
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                target: "audit",
                // Braces: a dotted first field right after `target:` is ambiguous to the macro.
                {
                    audit.event = event.event_type.as_str(),
                    audit.severity = event.severity.as_str(),
                    audit.result = event.result.map(|r| r.as_str()),
                    audit.action = event.action.as_deref(),
                    user.id = event.user_id.as_deref(),
                    user.name = event.username.as_deref(),
                    session.id_hash = event.session_id_hash.as_deref(),
                    client.ip = event.ip.as_deref(),
                    user_agent.original = event.user_agent.as_deref(),
                    http.method = event.method.as_deref(),
                    url.path = event.path.as_deref(),
                    request.id = event.request_id.as_deref(),
                    resource.kind = event.resource_type.as_deref(),
                    resource.id = event.resource_id.as_deref(),
                    audit.extra = %serde_json::Value::Object(event.extra.clone()),
                },
                "{}",
                event.message
            )
        };
    }
    match event.severity {
        Severity::Info | Severity::Low => emit!(info),
        Severity::Medium | Severity::High => emit!(warn),
        Severity::Critical => emit!(error),
    }
}
