//! The threads that run database work for async callers: a read lane served by
//! `DB_READ_THREADS` threads (one per CPU by default) and a write lane served by
//! one, each a bounded FIFO queue. An async server hands each request's database
//! work to a lane and awaits the answer, so its own threads never block on SQLite.
//!
//! Both lanes are shared by the whole process. On 2 cores this served about 12%
//! more point reads than giving every HTTP worker a blocking thread of its own: a
//! shared thread that always has work sleeps and wakes less often than one per
//! worker that sees part of it. Reads also never wait behind a write that waits
//! for another process's write lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use diesel::connection::{SimpleConnection, TransactionManager};
use tokio::sync::oneshot;

use crate::{Connection, Db, Error};

/// Jobs a lane holds before it answers [`Error::Busy`] at once: a bound on memory
/// (the queue's slots take about 0.4 MiB), far above what thousands of concurrent
/// requests queue. A job that waited longer than the pool timeout is refused anyway.
const QUEUE_CAPACITY: usize = 16 * 1024;

/// No job joins a batch that has run this long, so that one slow job does not
/// hold the answers of many quick ones behind it: a write waits at most about
/// this, plus its own run and the COMMIT, for the others of its batch.
const BATCH_TIME: Duration = Duration::from_millis(5);

/// The checkpoint thread folds the WAL back into the file at most this often
/// while writes go on: each checkpoint that copies pages syncs the WAL and the
/// file once, so a shorter pause buys nothing but syncs.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(50);

type Job = Box<dyn FnOnce(&Db) + Send>;
type Tx = <Connection as diesel::Connection>::TransactionManager;

/// A queued write: run alone in a transaction of its own (PostgreSQL, a batch
/// of one, or again after a batch failed), or staged in a savepoint of a batch's
/// transaction and answered once that has committed.
trait Write: Send {
    /// Runs in its own transaction and answers.
    fn alone(self: Box<Self>, db: &Db);
    /// Runs in a savepoint of the open transaction. True when its write is in
    /// the transaction, to be answered by [`Write::answer`] after the COMMIT;
    /// false when it failed, rolled back to its savepoint and was answered.
    fn stage(&mut self, conn: &mut Connection) -> bool;
    /// Sends the staged result, once the transaction holding it has committed.
    fn answer(self: Box<Self>);
}

struct WriteJob<T, E, F> {
    f: F,
    answer: oneshot::Sender<Result<T, E>>,
    queued: Instant,
    timeout: Duration,
    staged: Option<T>,
}

impl<T, E, F> WriteJob<T, E, F>
where
    E: From<Error>,
{
    /// A job that waited longer than the pool timeout (its caller has most
    /// likely given up) is [`Error::Busy`], as when no connection comes free in time.
    fn stale(&self) -> Option<E> {
        (self.queued.elapsed() > self.timeout).then(|| Error::Busy.into())
    }
}

impl<T, E, F> Write for WriteJob<T, E, F>
where
    F: FnMut(&mut Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<diesel::result::Error> + From<Error> + Send,
{
    fn alone(mut self: Box<Self>, db: &Db) {
        let outcome = match self.stale() {
            Some(busy) => Err(busy),
            None => db.write(&mut self.f),
        };
        // The caller may have gone (a dropped request): the work is done anyway.
        let _ = self.answer.send(outcome);
    }

    fn stage(&mut self, conn: &mut Connection) -> bool {
        let outcome = match self.stale() {
            Some(busy) => Err(busy),
            // Inside the batch's transaction: a savepoint.
            None => conn.write_transaction(&mut self.f),
        };
        match outcome {
            Ok(value) => {
                self.staged = Some(value);
                true
            }
            Err(err) => {
                // Its savepoint is rolled back: nothing of it will commit, so
                // its error is final and needs no wait.
                let (answer, _) = oneshot::channel();
                let _ = std::mem::replace(&mut self.answer, answer).send(Err(err));
                false
            }
        }
    }

    fn answer(mut self: Box<Self>) {
        if let Some(value) = self.staged.take() {
            let _ = self.answer.send(Ok(value));
        }
    }
}

/// Runs closures on the database's connections, off the caller's thread.
/// Cheap to clone; the threads stop when the last clone is dropped, after they
/// have run every job already queued.
#[derive(Clone, Debug)]
pub struct Executor {
    shared: Arc<Shared>,
}

// Fields drop in order: the queues close first, so the threads finish what is
// queued and exit, and then `Threads` waits for them.
#[derive(Debug)]
struct Shared {
    reads: Sender<Job>,
    read_threads: usize,
    writes: Sender<Box<dyn Write>>,
    /// Never sent on: dropped, it ends the checkpoint thread's pause.
    _stop: Sender<()>,
    #[expect(dead_code, reason = "held only to be joined when dropped")]
    threads: Threads,
    db: Db,
}

#[derive(Debug)]
struct Threads(Vec<JoinHandle<()>>);

impl Executor {
    /// Starts `db.config().read_threads` read threads (at most one per reader
    /// connection) and the write threads: one on SQLite, whose writes are serial
    /// anyway and which commits queued writes together (see [`Executor::write`]),
    /// `db.config().writers` on PostgreSQL, whose writers run in parallel.
    pub fn start(db: Db) -> Result<Executor, Error> {
        Self::with_capacity(db, QUEUE_CAPACITY)
    }

    fn with_capacity(db: Db, capacity: usize) -> Result<Executor, Error> {
        let read_threads = db
            .config()
            .read_threads
            .min(db.config().readers as usize)
            .max(1);
        let mut threads = Vec::with_capacity(read_threads + 1);
        // A job wakes one idle thread; a thread that finishes one takes the next
        // without sleeping.
        let (reads, read_queue) = crossbeam_channel::bounded::<Job>(capacity);
        for n in 0..read_threads {
            let queue = read_queue.clone();
            threads.push(spawn(format!("db-read-{n}"), &db, move |db, name| {
                for job in queue {
                    run_caught(name, || job(db));
                }
            })?);
        }
        let (writes, write_queue) = crossbeam_channel::bounded::<Box<dyn Write>>(capacity);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        if db.is_postgres() {
            for n in 0..db.config().writers {
                let queue = write_queue.clone();
                threads.push(spawn(format!("db-write-{n}"), &db, move |db, name| {
                    for job in queue {
                        run_caught(name, || job.alone(db));
                    }
                })?);
            }
        } else {
            // One pending signal is enough: the checkpoint thread runs once for
            // every commit since it last looked.
            let (committed, commits) = crossbeam_channel::bounded::<()>(1);
            threads.push(spawn("db-checkpoint".into(), &db, move |db, name| {
                checkpoints(db, name, &commits, &stopped);
            })?);
            threads.push(spawn("db-write".into(), &db, move |db, name| {
                write_batches(db, name, &write_queue, &committed);
            })?);
        }
        Ok(Executor {
            shared: Arc::new(Shared {
                reads,
                read_threads,
                writes,
                _stop: stop,
                threads: Threads(threads),
                db,
            }),
        })
    }

    /// The database the lanes run on, for work that needs no lane.
    pub fn db(&self) -> &Db {
        &self.shared.db
    }

    /// Runs `f` on a reader connection ([`Db::read`]) on the read lane.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let result = self.queue_read(f)?;
        // The answer is dropped unsent only when the job panicked.
        result.await.map_err(|_| Error::Panicked)?
    }

    /// Runs each of `fs` on a reader connection of its own on the read lane, all
    /// queued at once so that they run side by side on as many read threads as
    /// are free ([`Executor::read_threads`]): a read split into parts. The
    /// answers come in the order of `fs`; the first error is the answer. Each
    /// part reads its own snapshot.
    pub async fn read_all<T, E, F>(&self, fs: Vec<F>) -> Result<Vec<T>, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let mut results = Vec::with_capacity(fs.len());
        for f in fs {
            results.push(self.queue_read(f)?);
        }
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            out.push(result.await.map_err(|_| Error::Panicked)??);
        }
        Ok(out)
    }

    /// How many threads the read lane has: how many parts of a split read run at
    /// once on an idle server.
    pub fn read_threads(&self) -> usize {
        self.shared.read_threads
    }

    /// Queues `f` on the read lane; the receiver gets its answer.
    fn queue_read<T, E, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, E>>, Error>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (answer, result) = oneshot::channel();
        let queued = Instant::now();
        let timeout = self.shared.db.config().pool_timeout;
        let job: Job = Box::new(move |db| {
            let outcome = if queued.elapsed() > timeout {
                Err(Error::Busy.into())
            } else {
                db.read(f)
            };
            let _ = answer.send(outcome);
        });
        Self::queue(&self.shared.reads, job)?;
        Ok(result)
    }

    /// Runs `f` on SQLite at once, on the calling thread's own reader connection
    /// ([`Db::read_here`]), without the hop to a read thread: for reads that take
    /// less than the hop, such as a point read by primary key. On PostgreSQL,
    /// whose reads wait on the network, it is [`Executor::read`]. A panic in `f`
    /// is [`Error::Panicked`], as on a lane.
    pub async fn read_here<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        if self.shared.db.is_postgres() {
            return self.read(f).await;
        }
        let mut outcome = Err(Error::Panicked.into());
        run_caught("read here", || outcome = self.shared.db.read_here(f));
        outcome
    }

    /// Runs `f` in a write transaction on a writer ([`Db::write`]) on the write
    /// lane, which queues writers in the order they came.
    ///
    /// On SQLite, writes that queued while the one before them ran are committed
    /// together: one `BEGIN IMMEDIATE`, each write in a savepoint of its own (a
    /// write that fails rolls back alone and its caller gets its own error), one
    /// COMMIT, and only then is each caller answered. At most
    /// `db.config().write_batch` writes share a COMMIT, and none joins a batch
    /// older than 5 ms (`BATCH_TIME`). A write that finds nothing queued behind it
    /// runs alone, in a transaction of its own. If the batch cannot commit (a full
    /// disk, say) its writes run again, each alone, so each caller gets the outcome
    /// of its own write; like
    /// PostgreSQL's retries, this is why `f` is `FnMut`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<Error> + Send + 'static,
    {
        let (answer, result) = oneshot::channel();
        let job = Box::new(WriteJob {
            f,
            answer,
            queued: Instant::now(),
            timeout: self.shared.db.config().pool_timeout,
            staged: None,
        });
        Self::queue(&self.shared.writes, job)?;
        result.await.map_err(|_| Error::Panicked)?
    }

    /// A full queue is [`Error::Busy`], as when no connection comes free in time.
    fn queue<J>(lane: &Sender<J>, job: J) -> Result<(), Error> {
        lane.try_send(job).map_err(|err| match err {
            TrySendError::Full(_) => Error::Busy,
            // Every thread of the lane has exited, which a caught panic does not do.
            TrySendError::Disconnected(_) => Error::Stopped,
        })
    }
}

fn spawn(
    name: String,
    db: &Db,
    work: impl FnOnce(&Db, &str) + Send + 'static,
) -> Result<JoinHandle<()>, Error> {
    let db = db.clone();
    thread::Builder::new()
        .name(name.clone())
        .spawn(move || work(&db, &name))
        .map_err(Error::io("starting a database thread"))
}

/// A panicking job loses its answer (the caller gets `Error::Panicked`), not the
/// thread. True when it did not panic.
fn run_caught(thread: &str, job: impl FnOnce()) -> bool {
    let ran = catch_unwind(AssertUnwindSafe(job)).is_ok();
    if !ran {
        tracing::error!(%thread, "a database job panicked");
    }
    ran
}

/// The SQLite write thread: runs each job alone when nothing is queued behind
/// it, else as many as are queued (within the bounds) in one transaction, and
/// tells the checkpoint thread after each. Ends once every sender is gone and the
/// queue is empty.
fn write_batches(db: &Db, thread: &str, queue: &Receiver<Box<dyn Write>>, committed: &Sender<()>) {
    let batch = db.config().write_batch;
    while let Ok(first) = queue.recv() {
        match if batch > 1 {
            queue.try_recv().ok()
        } else {
            None
        } {
            Some(second) => write_batch(db, thread, vec![first, second], queue),
            None => {
                run_caught(thread, || first.alone(db));
            }
        }
        // Full: a signal is already pending.
        let _ = committed.try_send(());
    }
}

/// The SQLite checkpoint thread: after writes, copies the WAL back into the file
/// on a reader ([`Db::checkpoint_passive`]), at most every
/// [`CHECKPOINT_PAUSE`]. A passive checkpoint holds no lock a writer waits for,
/// so the copying and its syncs happen beside the writes instead of inside the
/// COMMIT that crosses `wal_autocheckpoint` (where they stalled every write queued
/// behind it for 30-500 ms). What is left to the writer's own checkpoint, every
/// `wal_autocheckpoint` pages, is to copy the last few pages so the WAL can
/// start over from its beginning. Ends with the write thread, or when the
/// executor is dropped.
fn checkpoints(db: &Db, thread: &str, commits: &Receiver<()>, stop: &Receiver<()>) {
    let mut failing = false;
    while commits.recv().is_ok() {
        match db.checkpoint_passive() {
            Ok(_) => {
                if std::mem::take(&mut failing) {
                    tracing::info!(%thread, "checkpoints run again");
                }
            }
            // Said once, not every pause: the writer's own checkpoints go on.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(%thread, error = %err, "a checkpoint failed");
            }
            Err(_) => {}
        }
        if let Err(RecvTimeoutError::Disconnected) = stop.recv_timeout(CHECKPOINT_PAUSE) {
            return;
        }
    }
}

/// Runs `first`, then the jobs queued behind, while the bounds allow, in one
/// transaction, then answers them. When the transaction cannot begin, go on or
/// commit, nothing of it is kept and its writes run again, each alone.
fn write_batch(
    db: &Db,
    thread: &str,
    first: Vec<Box<dyn Write>>,
    queue: &Receiver<Box<dyn Write>>,
) {
    let started = Instant::now();
    let mut first = first.into_iter();
    let most = db.config().write_batch;
    let mut staged: Vec<Box<dyn Write>> = Vec::with_capacity(most);
    let committed = db.write(|conn| -> Result<(), Error> {
        let mut taken = 0;
        // The jobs already taken run whatever the bounds; only then does the
        // batch take more from the queue.
        while let Some(mut job) = first.next().or_else(|| {
            (taken < most && started.elapsed() < BATCH_TIME)
                .then(|| queue.try_recv().ok())
                .flatten()
        }) {
            taken += 1;
            let mut kept = false;
            let ran = run_caught(thread, || kept = job.stage(conn));
            if kept {
                staged.push(job);
                continue;
            }
            // The job failed or panicked (and is answered, or dropped unanswered
            // for `Error::Panicked`): the batch goes on if its transaction is
            // intact, with no savepoint of the job left open.
            drop(job);
            if !ran {
                close_savepoints(conn)?;
            }
            still_in_transaction(conn)?;
        }
        Ok(())
    });
    match committed {
        Ok(()) => {
            tracing::debug!(%thread, writes = staged.len(), "committed a batch of writes");
            for job in staged {
                job.answer();
            }
        }
        Err(err) => {
            tracing::warn!(%thread, error = %err, writes = staged.len(),
                "a batch of writes did not commit; running them one by one");
            for job in staged.into_iter().chain(first) {
                run_caught(thread, || job.alone(db));
            }
        }
    }
}

/// Rolls back the savepoints a panicking job left open, down to the batch's
/// transaction.
fn close_savepoints(conn: &mut Connection) -> Result<(), Error> {
    loop {
        let depth = Tx::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .map_or(0, |depth| depth.get());
        if depth <= 1 {
            return Ok(());
        }
        Tx::rollback_transaction(conn)?;
    }
}

/// Errs when SQLite has ended the batch's transaction itself, as it does on some
/// `SQLITE_FULL` and I/O errors: the writes staged before are gone, and the next
/// savepoint would open (and its release commit) a transaction of its own.
fn still_in_transaction(conn: &mut Connection) -> Result<(), Error> {
    // BEGIN succeeds only outside a transaction.
    match conn.batch_execute("BEGIN") {
        Err(_) => Ok(()),
        Ok(()) => {
            let _ = conn.batch_execute("ROLLBACK");
            Err(diesel::result::Error::NotInTransaction.into())
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        let current = thread::current().id();
        for handle in self.0.drain(..) {
            // A job that held the last clone cannot wait for its own thread.
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::time::Duration;

    use diesel::Connection as _;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::Config;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn open(dir: &tempfile::TempDir, pool_timeout: Duration) -> Db {
        let mut config = Config::for_path(dir.path().join("app.db"));
        config.pool_timeout = pool_timeout;
        config.read_threads = 2;
        let db = Db::open(&config).unwrap();
        db.write(|conn| {
            diesel::sql_query("CREATE TABLE t (v INTEGER NOT NULL)").execute(conn)?;
            Ok::<_, Error>(())
        })
        .unwrap();
        db
    }

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Starts a write that inserts 1 once `release` is passed, and returns when it is
    /// inside its transaction: until then the write lane is busy.
    fn hold_the_writer(executor: &Executor) -> (Arc<Barrier>, JoinHandle<Result<usize, Error>>) {
        let held = Arc::new(Barrier::new(2));
        let release = Arc::new(Barrier::new(2));
        let write = {
            let (executor, held, release) = (executor.clone(), held.clone(), release.clone());
            thread::spawn(move || {
                block_on(executor.write(move |conn| {
                    held.wait();
                    release.wait();
                    insert(1)(conn)
                }))
            })
        };
        held.wait();
        (release, write)
    }

    /// Polls once: enough for a job to reach its queue.
    fn poll_once<F: Future + ?Sized>(future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    fn insert(v: i64) -> impl FnMut(&mut crate::Connection) -> Result<usize, Error> {
        move |conn| {
            Ok(diesel::sql_query("INSERT INTO t (v) VALUES (?)")
                .bind::<BigInt, _>(v)
                .execute(conn)?)
        }
    }

    fn count(conn: &mut crate::Connection) -> Result<i64, Error> {
        Ok(diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<Count>(conn)?
            .n)
    }

    #[test]
    fn writes_commit_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        block_on(async {
            for v in 0..10 {
                assert_eq!(executor.write(insert(v)).await.unwrap(), 1);
            }
            assert_eq!(executor.read(count).await.unwrap(), 10);
        });
        // A failed write rolls back and reports its error.
        let failed = block_on(executor.write(|conn| {
            insert(99)(conn)?;
            diesel::sql_query("INSERT INTO missing VALUES (1)").execute(conn)?;
            Ok::<_, Error>(())
        }));
        assert!(matches!(failed, Err(Error::Query(_))), "{failed:?}");
        assert_eq!(executor.db().read(count).unwrap(), 10);
    }

    /// The parts of a split read run at once: each waits for the other's word,
    /// which one after the other would never come.
    #[test]
    fn the_parts_of_a_split_read_run_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        assert_eq!(executor.read_threads(), 2);
        let (to_b, from_a) = crossbeam_channel::bounded::<()>(1);
        let (to_a, from_b) = crossbeam_channel::bounded::<()>(1);
        let part = |tell: Sender<()>, hear: Receiver<()>| {
            move |conn: &mut crate::Connection| {
                tell.send(()).unwrap();
                hear.recv_timeout(Duration::from_secs(5))
                    .map_err(|_| Error::Busy)?;
                count(conn)
            }
        };
        let counts = block_on(executor.read_all(vec![part(to_b, from_b), part(to_a, from_a)]));
        assert_eq!(counts.unwrap(), [0, 0]);
        // An error in one part is the answer.
        let failed = block_on(executor.read_all(vec![
            Box::new(count) as Box<dyn FnOnce(&mut crate::Connection) -> Result<i64, Error> + Send>,
            Box::new(|_: &mut crate::Connection| Err(Error::Busy)),
        ]));
        assert!(matches!(failed, Err(Error::Busy)), "{failed:?}");
    }

    #[test]
    fn reads_go_on_while_the_write_lane_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        let (release, write) = hold_the_writer(&executor);
        // The writer is inside its transaction: a read still answers, from the
        // snapshot before it.
        assert_eq!(block_on(executor.read(count)).unwrap(), 0);
        release.wait();
        assert_eq!(write.join().unwrap().unwrap(), 1);
        assert_eq!(block_on(executor.read(count)).unwrap(), 1);
    }

    #[test]
    fn a_full_queue_or_a_stale_job_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::with_capacity(open(&dir, Duration::from_millis(100)), 1).unwrap();
        let (release, first) = hold_the_writer(&executor);
        // The write thread is busy: one job fits in the queue, the next does not.
        let mut queued = Box::pin(executor.write(insert(2)));
        assert!(poll_once(queued.as_mut()).is_pending());
        assert!(matches!(
            block_on(executor.write(insert(3))),
            Err(Error::Busy)
        ));
        // Not a wait on anything: the queued job must grow older than the 100 ms
        // pool timeout, and only time passing does that.
        thread::sleep(Duration::from_millis(150));
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        // It waited past the pool timeout: refused, not run.
        assert!(matches!(block_on(queued), Err(Error::Busy)));
        assert_eq!(executor.db().read(count).unwrap(), 1);
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_lane_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_path(dir.path().join("app.db"));
        config.read_threads = 1;
        let executor = Executor::start(Db::open(&config).unwrap()).unwrap();
        let panicked = block_on(executor.read(|_| -> Result<(), Error> { panic!("boom") }));
        assert!(matches!(panicked, Err(Error::Panicked)), "{panicked:?}");
        let answered = block_on(executor.read(|conn| {
            Ok::<_, Error>(
                diesel::sql_query("SELECT 7 AS n")
                    .get_result::<Count>(conn)?
                    .n,
            )
        }));
        assert_eq!(answered.unwrap(), 7);
    }

    type Queued<'a> = std::pin::Pin<Box<dyn Future<Output = Result<usize, Error>> + Send + 'a>>;

    /// Queues a write behind the held writer; it waits there until released.
    fn queue<'a>(
        executor: &'a Executor,
        f: impl FnMut(&mut crate::Connection) -> Result<usize, Error> + Send + 'static,
    ) -> Queued<'a> {
        let mut write: Queued<'a> = Box::pin(executor.write(f));
        assert!(poll_once(write.as_mut()).is_pending());
        write
    }

    fn values(db: &Db) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Value {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        db.read(|conn| {
            Ok::<_, Error>(
                diesel::sql_query("SELECT v FROM t ORDER BY v")
                    .load::<Value>(conn)?
                    .into_iter()
                    .map(|row| row.v)
                    .collect(),
            )
        })
        .unwrap()
    }

    #[test]
    fn a_failing_write_in_a_batch_rolls_back_alone_with_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        let (release, first) = hold_the_writer(&executor);
        let ok = queue(&executor, insert(10));
        let failing = queue(&executor, |conn| {
            insert(20)(conn)?;
            diesel::sql_query("INSERT INTO missing VALUES (1)").execute(conn)?;
            Ok(1)
        });
        // Domain code opens transactions of its own inside a write: nested
        // savepoints inside the job's.
        let nested = queue(&executor, |conn| {
            conn.transaction(|conn| insert(30)(conn))?;
            insert(31)(conn)
        });
        let nested_failing = queue(&executor, |conn| {
            conn.transaction(|conn| insert(40)(conn))?;
            Err(Error::Busy)
        });
        let last = queue(&executor, insert(50));
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        assert_eq!(block_on(ok).unwrap(), 1);
        assert!(matches!(block_on(failing), Err(Error::Query(_))));
        assert_eq!(block_on(nested).unwrap(), 1);
        assert!(matches!(block_on(nested_failing), Err(Error::Busy)));
        assert_eq!(block_on(last).unwrap(), 1);
        assert_eq!(values(executor.db()), [1, 10, 30, 31, 50]);
    }

    #[test]
    fn a_panic_in_a_batch_fails_only_that_write() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        let (release, first) = hold_the_writer(&executor);
        let before = queue(&executor, insert(10));
        // It panics two savepoints deep, with writes in both.
        let panicking = queue(&executor, |conn| {
            insert(20)(conn)?;
            conn.transaction(|conn| -> Result<usize, Error> {
                insert(21)(conn)?;
                panic!("boom")
            })
        });
        let after = queue(&executor, insert(30));
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        assert_eq!(block_on(before).unwrap(), 1);
        assert!(matches!(block_on(panicking), Err(Error::Panicked)));
        assert_eq!(block_on(after).unwrap(), 1);
        assert_eq!(values(executor.db()), [1, 10, 30]);
        // The lane goes on, in and out of batches.
        assert_eq!(block_on(executor.write(insert(40))).unwrap(), 1);
    }

    #[test]
    fn no_write_in_a_batch_is_answered_before_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        let (release, first) = hold_the_writer(&executor);
        let mut staged = queue(&executor, insert(10));
        let inside = Arc::new(Barrier::new(2));
        let go_on = Arc::new(Barrier::new(2));
        let blocking = {
            let (inside, go_on) = (inside.clone(), go_on.clone());
            queue(&executor, move |conn| {
                inside.wait();
                go_on.wait();
                insert(20)(conn)
            })
        };
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        // The batch is running its second write: the first is written but not
        // committed, and its caller is still waiting.
        inside.wait();
        assert!(poll_once(staged.as_mut()).is_pending());
        assert_eq!(values(executor.db()), [1]);
        go_on.wait();
        assert_eq!(block_on(staged).unwrap(), 1);
        assert_eq!(block_on(blocking).unwrap(), 1);
        assert_eq!(values(executor.db()), [1, 10, 20]);
    }

    /// Queues `n` writes behind the held writer, the first taking `first_takes`
    /// longer, and returns how many rows a reader saw when each ran: the rows of
    /// the batches committed before its own.
    fn committed_before_each(executor: &Executor, n: i64, first_takes: Duration) -> Vec<usize> {
        let (release, first) = hold_the_writer(executor);
        let writes: Vec<_> = (0..n)
            .map(|v| {
                let db = executor.db().clone();
                queue(executor, move |conn| {
                    if v == 0 {
                        thread::sleep(first_takes);
                    }
                    let committed = db.read(count)?;
                    insert(v)(conn)?;
                    Ok(committed as usize)
                })
            })
            .collect();
        release.wait();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        writes.into_iter().map(|w| block_on(w).unwrap()).collect()
    }

    #[test]
    fn a_batch_commits_at_most_write_batch_writes() {
        for batch in [1, 8] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = open(&dir, Duration::from_secs(5)).config().clone();
            config.write_batch = batch;
            let executor = Executor::start(Db::open(&config).unwrap()).unwrap();
            let seen = committed_before_each(&executor, 10, Duration::ZERO);
            let expected: Vec<usize> = if batch == 1 {
                (1..=10).collect()
            } else {
                [[1; 8].as_slice(), &[9, 9]].concat()
            };
            assert_eq!(seen, expected, "SQLITE_WRITE_BATCH={batch}");
        }
    }

    #[test]
    fn a_batch_takes_no_more_writes_once_it_has_run_batch_time() {
        let dir = tempfile::tempdir().unwrap();
        let executor = Executor::start(open(&dir, Duration::from_secs(5))).unwrap();
        // The first write of the batch outlasts BATCH_TIME (a sleep, as the time
        // bound is what is tested); the one taken with it still runs in it, and
        // the one behind them waits for the next batch.
        let seen = committed_before_each(&executor, 3, BATCH_TIME * 2);
        assert_eq!(seen, [1, 1, 3]);
    }

    #[test]
    fn reads_here_run_on_this_threads_reader_of_each_database() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = Executor::start(open(&one, Duration::from_secs(5))).unwrap();
        let two = Executor::start(open(&two, Duration::from_secs(5))).unwrap();
        block_on(async {
            one.write(insert(1)).await.unwrap();
            for _ in 0..2 {
                assert_eq!(one.read_here(count).await.unwrap(), 1);
                assert_eq!(two.read_here(count).await.unwrap(), 0);
            }
            // It sees each commit, and it is a reader: it cannot write.
            two.write(insert(2)).await.unwrap();
            assert_eq!(two.read_here(count).await.unwrap(), 1);
            assert!(two.read_here(insert(3)).await.is_err());
            let panicked = one
                .read_here(|_| -> Result<(), Error> { panic!("boom") })
                .await;
            assert!(matches!(panicked, Err(Error::Panicked)), "{panicked:?}");
            assert_eq!(one.read_here(count).await.unwrap(), 1);
        });
    }

    #[test]
    fn dropping_the_executor_runs_what_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, Duration::from_secs(5));
        let executor = Executor::start(db.clone()).unwrap();
        // Queued, then the futures dropped: the jobs still run.
        for v in 0..50 {
            let mut write = Box::pin(executor.write(insert(v)));
            let _ = poll_once(write.as_mut());
        }
        drop(executor);
        assert_eq!(db.read(count).unwrap(), 50);
    }

    /// The writes reach the database file itself, not only its WAL, with no later
    /// write, close or call: the checkpoint thread copies them back (the writer's
    /// own checkpoint waits for `wal_autocheckpoint` pages, far more than these).
    #[test]
    fn writes_are_copied_into_the_file_beside_the_write_lane() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, Duration::from_secs(5));
        let executor = Executor::start(db).unwrap();
        block_on(async {
            for v in 0..100 {
                executor.write(insert(v)).await.unwrap();
            }
        });
        // What a copy of the file without its -wal holds: None while the table is
        // not in it yet, or while a checkpoint is halfway through a page.
        let in_file_alone = || -> Option<i64> {
            let copy = dir.path().join("copy.db");
            let _ = std::fs::remove_file(dir.path().join("copy.db-wal"));
            std::fs::copy(dir.path().join("app.db"), &copy).ok()?;
            let mut conn = crate::Connection::open(&crate::Database::Sqlite(copy)).ok()?;
            count(&mut conn).ok()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rows = in_file_alone();
        while rows != Some(100) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            rows = in_file_alone();
        }
        assert_eq!(rows, Some(100), "rows in the file without its WAL");
        // The lane still serves writes after it.
        assert_eq!(block_on(executor.write(insert(100))).unwrap(), 1);
    }
}
