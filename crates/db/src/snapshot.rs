//! The read snapshots a thread keeps across its point reads ([`Db::read_here`]).
//!
//! In WAL mode, beginning and ending a read transaction is most of what a point
//! read costs: each locks a read mark in the shared-memory index (a mutex shared by
//! the process's connections, and `fcntl` calls) and asks the file's size. So a
//! thread's own reader keeps its read transaction (its snapshot) open from one read
//! to the next, and begins a new one when
//! - a write through this [`Db`] has finished since (its writer connection went
//!   back to the pool: [`Snapshots::writes`]), so a read after a write, or after
//!   its answer, sees it; or
//! - the snapshot is older than the hold (`SQLITE_SNAPSHOT_MS`), so a commit of
//!   another process is seen at most that much later; 0 turns holding off.
//!
//! A held snapshot keeps checkpoints from copying what was committed after it
//! and the WAL from starting over, so a keeper thread ends the snapshots that their
//! threads stopped using: none is held much past the hold (at most a period of
//! the keeper later, see [`keeper_period`]).
//!
//! [`Db`]: crate::Db
//! [`Db::read_here`]: crate::Db::read_here

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::TransactionManager;
use diesel::r2d2;

use crate::Connection;

type Transactions = <Connection as diesel::Connection>::TransactionManager;

/// The keeper checks for snapshots left open at most this often.
const KEEPER_PERIOD: Duration = Duration::from_millis(10);

/// How often the keeper looks for snapshots to end: every hold, but not more
/// often than every [`KEEPER_PERIOD`].
fn keeper_period(hold: Duration) -> Duration {
    hold.max(KEEPER_PERIOD)
}

/// A thread's own reader: its connection and the snapshot it holds, if any.
pub(crate) struct Reader {
    conn: Connection,
    snapshot: Option<Snapshot>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    since: Instant,
    /// [`Snapshots::generation`] when it began.
    generation: u64,
}

impl Reader {
    pub(crate) fn new(conn: Connection) -> Reader {
        Reader {
            conn,
            snapshot: None,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Ends the snapshot. `false`: the connection could not end it (its state is
    /// unknown) and must be closed.
    fn end(&mut self) -> bool {
        self.snapshot.take().is_none() || Transactions::commit_transaction(&mut self.conn).is_ok()
    }

    /// Whether the connection is still in the one transaction of its snapshot,
    /// as the closure that ran on it should leave it.
    fn intact(&mut self) -> bool {
        match Transactions::transaction_manager_status_mut(&mut self.conn).transaction_depth() {
            Ok(Some(depth)) => depth.get() == 1,
            _ => false,
        }
    }
}

/// Where a thread keeps its reader between reads; the keeper reaches it there.
/// Empty while a read runs on it, or after its connection was closed.
pub(crate) type Slot = Mutex<Option<Reader>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Reader>> {
    // Nothing panics while a slot is locked (reads run with the reader taken out).
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The snapshots of one [`Db`](crate::Db) (shared by its clones): the count of
/// its finished writes, the hold, and the keeper.
pub(crate) struct Snapshots {
    generation: Arc<AtomicU64>,
    hold: Duration,
    keeper: Arc<Keeper>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("generation", &self.generation)
            .field("hold", &self.hold)
            .finish_non_exhaustive()
    }
}

impl Snapshots {
    pub(crate) fn new(hold: Duration) -> Snapshots {
        Snapshots {
            generation: Arc::new(AtomicU64::new(0)),
            hold,
            keeper: Arc::new(Keeper::default()),
            thread: Mutex::new(None),
        }
    }

    /// The writer pool's event handler: a writer connection back in the pool has
    /// finished its write (committed or not), and every snapshot begun before
    /// is stale. The pool calls it before the checkout's owner goes on, so before
    /// a write's caller is answered.
    pub(crate) fn writes(&self) -> Box<dyn r2d2::HandleEvent> {
        Box::new(Writes(Arc::clone(&self.generation)))
    }

    /// A new slot for a thread's reader, which the keeper looks after.
    pub(crate) fn slot(&self, reader: Reader) -> Arc<Slot> {
        let slot = Arc::new(Mutex::new(Some(reader)));
        let mut slots = self
            .keeper
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slots.retain(|slot| slot.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }

    /// Takes the reader out of `slot` (or `None`, when its connection was closed:
    /// the caller opens another).
    pub(crate) fn take(slot: &Slot) -> Option<Reader> {
        lock(slot).take()
    }

    /// Readies `reader` for a read: keeps its snapshot if it is fresh, else ends
    /// it and, when holding is on, begins another. `false`: the connection is in
    /// an unknown state, to be closed.
    pub(crate) fn refresh(&self, reader: &mut Reader) -> bool {
        // Before the snapshot begins: a write that finished after this load makes
        // the next read refresh again.
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(held) = reader.snapshot
            && held.generation == generation
            && held.since.elapsed() < self.hold
        {
            return true;
        }
        if !reader.end() {
            return false;
        }
        if self.hold.is_zero() {
            return true;
        }
        // `BEGIN` (deferred): the snapshot itself is taken by the first read.
        if Transactions::begin_transaction(&mut reader.conn).is_err() {
            return false;
        }
        reader.snapshot = Some(Snapshot {
            since: Instant::now(),
            generation,
        });
        true
    }

    /// Puts `reader` back after a read. A read that left the connection outside
    /// the snapshot's transaction, or in one of its own, ends the snapshot; a
    /// connection that cannot end it is closed.
    pub(crate) fn give_back(&self, slot: &Slot, mut reader: Reader) {
        if reader.snapshot.is_some() && !reader.intact() && !reader.end() {
            return;
        }
        let held = reader.snapshot.is_some();
        *lock(slot) = Some(reader);
        // After the snapshot is back in its slot, where the keeper looks.
        if held {
            self.keep();
        }
    }

    /// Makes sure the keeper runs: started on the first snapshot, woken when it
    /// is waiting for one.
    fn keep(&self) {
        let armed = &self.keeper.armed;
        if armed.load(Ordering::Acquire) || armed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_none() {
            let keeper = Arc::clone(&self.keeper);
            let period = keeper_period(self.hold);
            let hold = self.hold;
            *thread = std::thread::Builder::new()
                .name("db snapshots".into())
                .spawn(move || keeper.run(hold, period))
                .ok();
        }
        drop(thread);
        self.keeper.wake();
    }
}

impl Drop for Snapshots {
    fn drop(&mut self) {
        self.keeper.closed.store(true, Ordering::Release);
        self.keeper.wake();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Writes(Arc<AtomicU64>);

impl r2d2::HandleEvent for Writes {
    fn handle_checkin(&self, _: r2d2::event::CheckinEvent) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Ends the snapshots that threads left open.
#[derive(Default)]
struct Keeper {
    slots: Mutex<Vec<Weak<Slot>>>,
    /// A snapshot may be open: the keeper has work.
    armed: AtomicBool,
    /// The database is dropped: the keeper ends every snapshot and stops.
    closed: AtomicBool,
    /// With `woken`: the keeper waits for `armed` or `closed`.
    signal: Mutex<()>,
    woken: Condvar,
}

impl Keeper {
    fn wake(&self) {
        // Under the lock: the keeper is either before its check or waiting.
        let _signal = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
        self.woken.notify_one();
    }

    fn run(&self, hold: Duration, period: Duration) {
        let closed = || self.closed.load(Ordering::Acquire);
        loop {
            let mut signal = self.signal.lock().unwrap_or_else(PoisonError::into_inner);
            while !closed() && !self.armed.load(Ordering::Acquire) {
                signal = self
                    .woken
                    .wait(signal)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !closed() {
                signal = self
                    .woken
                    .wait_timeout(signal, period)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            drop(signal);
            let closing = closed();
            // Cleared before looking: a snapshot begun during the look arms it again.
            self.armed.store(false, Ordering::Release);
            let open = self.end_old(if closing { Duration::ZERO } else { hold });
            if closing {
                return;
            }
            if open {
                self.armed.store(true, Ordering::Release);
            }
        }
    }

    /// Ends every snapshot at least `age` old whose thread is not reading;
    /// whether any stays open.
    fn end_old(&self, age: Duration) -> bool {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut open = false;
        for slot in slots {
            // A thread that is reading holds its slot only for a moment; it is
            // looked at again next time.
            let Ok(mut reader) = slot.try_lock() else {
                open = true;
                continue;
            };
            let Some(held) = &mut *reader else {
                // Its thread is reading: it arms the keeper again when it puts a
                // snapshot back.
                continue;
            };
            if held.snapshot.is_some_and(|s| s.since.elapsed() >= age) {
                if !held.end() {
                    *reader = None;
                }
            } else {
                open |= held.snapshot.is_some();
            }
        }
        open
    }
}
