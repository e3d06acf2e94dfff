//! The two database backends behind three primitives: run read queries, run one statement, and
//! run statements all-or-nothing with the row counts they must affect (compare-and-swap).
//! Queries are written once, with `$N` placeholders, and carry owned parameters and rows.
//!
//! **SQLite** runs on one dedicated thread that owns the connection. Callers send it jobs; each
//! round of the thread takes every job waiting, answers the reads, then applies all the writes
//! in a single transaction (group commit), each inside its own savepoint so that one job's failed
//! compare-and-swap rolls back only that job. Writers reply only after the commit. Measured before
//! this design: with sqlx's SQLite driver a validation spent about 70 % of its server time in
//! thread hand-offs (six driver round trips, each waking a worker thread) and 1 % in SQLite.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync) run on a second
//! thread with its own connection, every second and without blocking writers; left to SQLite's
//! automatic checkpoint they would stall the database thread and every request queued behind it
//! (p99 latency fell from 7–10 ms to the figures in docs/benchmarks.md when they moved).
//!
//! **PostgreSQL** goes through a `sqlx` connection pool, one transaction per write.

use std::str::FromStr;
use std::sync::mpsc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Row as _, TypeInfo};
use tokio::sync::oneshot;

use super::StoreError;

/// A query parameter.
#[derive(Debug, Clone)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// An integer or NULL.
    OptInt(Option<i64>),
    /// Text.
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A column value read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// One row, columns in the query's order.
pub type Row = Vec<Value>;

/// A statement and its parameters.
#[derive(Debug, Clone)]
pub struct Statement {
    /// SQL with `$1`, `$2`, ... placeholders.
    pub sql: &'static str,
    /// Parameters, in placeholder order.
    pub params: Vec<Param>,
}

/// A statement that must affect exactly `rows` rows for its transaction to commit.
#[derive(Debug, Clone)]
pub struct Guarded {
    /// The statement.
    pub statement: Statement,
    /// Required affected rows; `None` accepts any count.
    pub rows: Option<u64>,
}

/// Builds a [`Statement`].
pub fn statement(sql: &'static str, params: Vec<Param>) -> Statement {
    Statement { sql, params }
}

/// The database.
#[derive(Clone)]
pub enum Database {
    /// SQLite through its dedicated thread.
    Sqlite(SqliteThread),
    /// PostgreSQL through a pool.
    Postgres(PgPool),
}

impl Database {
    /// Runs read queries (in one round trip to the SQLite thread) and returns their rows.
    pub async fn read(&self, queries: Vec<Statement>) -> Result<Vec<Vec<Row>>, StoreError> {
        match self {
            Self::Sqlite(thread) => {
                thread
                    .read(move |connection| queries.iter().map(|q| sqlite_rows(connection, q)).collect())
                    .await
            }
            Self::Postgres(pool) => {
                let mut results = Vec::with_capacity(queries.len());
                let mut connection = pool.acquire().await?;
                for query in &queries {
                    let rows = bind_pg(query).fetch_all(&mut *connection).await?;
                    results.push(rows.iter().map(pg_row).collect::<Result<_, _>>()?);
                }
                Ok(results)
            }
        }
    }

    /// Runs one read query.
    pub async fn query(&self, query: Statement) -> Result<Vec<Row>, StoreError> {
        Ok(self.read(vec![query]).await?.into_iter().next().unwrap_or_default())
    }

    /// Runs one statement and returns the rows it affected.
    pub async fn execute(&self, statement: Statement) -> Result<u64, StoreError> {
        let outcome = self.atomically(vec![Guarded { statement, rows: None }], Vec::new()).await?;
        Ok(outcome.map(|(counts, _)| counts.first().copied().unwrap_or(0)).unwrap_or(0))
    }

    /// Runs `statements` in one transaction, then the `returning` queries in the same transaction.
    /// When a statement affects another number of rows than it requires, everything is rolled
    /// back and `None` is returned. Otherwise the affected row counts and the queries' rows.
    pub async fn atomically(
        &self,
        statements: Vec<Guarded>,
        returning: Vec<Statement>,
    ) -> Result<Option<(Vec<u64>, Vec<Vec<Row>>)>, StoreError> {
        match self {
            Self::Sqlite(thread) => thread
                .write(move |connection| {
                    let mut counts = Vec::with_capacity(statements.len());
                    for guarded in &statements {
                        let sql = sqlite_sql(guarded.statement.sql);
                        let count = connection
                            .prepare_cached(&sql)?
                            .execute(rusqlite::params_from_iter(guarded.statement.params.iter()))?
                            as u64;
                        if guarded.rows.is_some_and(|rows| rows != count) {
                            return Err(StoreError::VersionMoved);
                        }
                        counts.push(count);
                    }
                    let rows =
                        returning.iter().map(|q| sqlite_rows(connection, q)).collect::<Result<_, _>>()?;
                    Ok((counts, rows))
                })
                .await
                .map(Some)
                .or_else(|e| if matches!(e, StoreError::VersionMoved) { Ok(None) } else { Err(e) }),
            Self::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let mut counts = Vec::with_capacity(statements.len());
                for guarded in &statements {
                    let count = bind_pg(&guarded.statement).execute(&mut *transaction).await?.rows_affected();
                    if guarded.rows.is_some_and(|rows| rows != count) {
                        transaction.rollback().await?;
                        return Ok(None);
                    }
                    counts.push(count);
                }
                let mut rows = Vec::with_capacity(returning.len());
                for query in &returning {
                    let fetched = bind_pg(query).fetch_all(&mut *transaction).await?;
                    rows.push(fetched.iter().map(pg_row).collect::<Result<_, _>>()?);
                }
                transaction.commit().await?;
                Ok(Some((counts, rows)))
            }
        }
    }

    /// Stops the SQLite thread or closes the pool.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(thread) => thread.stop().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// `$N` placeholders as SQLite's `?N` (explicitly numbered, so order of appearance never matters).
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(value) => ToSqlOutput::from(*value),
            Self::OptInt(Some(value)) => ToSqlOutput::from(*value),
            Self::Text(text) | Self::OptText(Some(text)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
            }
            Self::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Self::OptInt(None) | Self::OptText(None) => ToSqlOutput::Owned(rusqlite::types::Value::Null),
        })
    }
}

fn sqlite_rows(connection: &rusqlite::Connection, query: &Statement) -> Result<Vec<Row>, StoreError> {
    let mut prepared = connection.prepare_cached(&sqlite_sql(query.sql))?;
    let columns = prepared.column_count();
    let mut rows = prepared.query(rusqlite::params_from_iter(query.params.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for index in 0..columns {
            values.push(match row.get_ref(index)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(value) => Value::Int(value),
                ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
                ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
                ValueRef::Real(_) => return Err(StoreError::Corrupt("unexpected REAL column")),
            });
        }
        out.push(values);
    }
    Ok(out)
}

fn bind_pg(query: &Statement) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query.params.iter().fold(sqlx::query(sqlx::AssertSqlSafe(query.sql)), |q, param| match param {
        Param::Int(value) => q.bind(*value),
        Param::OptInt(value) => q.bind(*value),
        Param::Text(text) => q.bind(text.as_str()),
        Param::OptText(text) => q.bind(text.as_deref()),
        Param::Blob(bytes) => q.bind(bytes.as_slice()),
    })
}

fn pg_row(row: &PgRow) -> Result<Row, StoreError> {
    row.columns()
        .iter()
        .map(|column| {
            let index = column.ordinal();
            Ok(match column.type_info().name() {
                "INT8" => row.try_get::<Option<i64>, _>(index)?.map_or(Value::Null, Value::Int),
                "INT4" => row.try_get::<Option<i32>, _>(index)?.map_or(Value::Null, |v| Value::Int(v.into())),
                "INT2" => row.try_get::<Option<i16>, _>(index)?.map_or(Value::Null, |v| Value::Int(v.into())),
                "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(index)?.map_or(Value::Null, Value::Blob),
                _ => row.try_get::<Option<String>, _>(index)?.map_or(Value::Null, Value::Text),
            })
        })
        .collect()
}

/// Connects to PostgreSQL.
pub async fn connect_postgres(url: &str) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new().max_connections(16).connect_with(PgConnectOptions::from_str(url)?).await?)
}

type ReadJob = Box<dyn FnOnce(&rusqlite::Connection) + Send>;
/// A write job runs inside the round's transaction (or, when `run` is false because the round's
/// transaction is already lost, does nothing) and returns what to do once the commit's outcome is
/// known.
type WriteJob =
    Box<dyn FnOnce(&rusqlite::Connection, bool) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

enum Job {
    Read(ReadJob),
    Write(WriteJob),
    Stop,
}

/// The thread that owns the SQLite connection.
#[derive(Clone)]
pub struct SqliteThread {
    jobs: mpsc::Sender<Job>,
    threads: std::sync::Arc<std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

/// Most jobs taken in one round (bounds the latency a long queue adds to the first job).
const MAX_ROUND: usize = 512;

impl SqliteThread {
    /// Opens (creating) the database file and starts its thread.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let connection = rusqlite::Connection::open(path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
        )?;
        connection.set_prepared_statement_cache_capacity(64);
        let checkpointer = rusqlite::Connection::open(path)?;
        checkpointer.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")?;
        let (jobs, queue) = mpsc::channel();
        let (stopped, stop_signal) = mpsc::channel::<()>();
        let spawn_error =
            |e: std::io::Error| StoreError::Commit(format!("cannot start a database thread: {e}"));
        let database = std::thread::Builder::new()
            .name("tessera-sqlite".into())
            .spawn(move || {
                run(&connection, &queue);
                drop(stopped);
            })
            .map_err(spawn_error)?;
        let checkpoints = std::thread::Builder::new()
            .name("tessera-checkpoint".into())
            .spawn(move || checkpoint_every_second(&checkpointer, &stop_signal))
            .map_err(spawn_error)?;
        Ok(Self { jobs, threads: std::sync::Arc::new(std::sync::Mutex::new(vec![database, checkpoints])) })
    }

    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Read(Box::new(move |connection| {
                let _ = reply.send(job(connection));
            })))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write(Box::new(move |connection, run| {
                let result = if run {
                    in_savepoint(connection, job)
                } else {
                    Err(StoreError::Commit("the round's transaction was lost before this write ran".into()))
                };
                Box::new(move |committed: Result<(), String>| {
                    let _ = reply.send(match committed {
                        Ok(()) => result,
                        Err(message) => Err(StoreError::Commit(message)),
                    });
                })
            })))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Applies a schema script and records its version, in one transaction.
    pub(super) async fn migrate(&self, sql: &'static str, version: i64) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection.execute_batch(sql)?;
            connection.execute_batch(&format!("PRAGMA user_version = {version}"))?;
            Ok(())
        })
        .await
    }

    /// Finishes the queued jobs, stops the thread, and waits for it and for the final checkpoint.
    async fn stop(&self) {
        let _ = self.jobs.send(Job::Stop);
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn in_savepoint<T>(
    connection: &rusqlite::Connection,
    job: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    connection.execute_batch("SAVEPOINT job")?;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(connection)))
        .unwrap_or_else(|_| Err(StoreError::Commit("a database job failed unexpectedly".into())));
    let ended = if result.is_ok() {
        connection.execute_batch("RELEASE job")
    } else {
        connection.execute_batch("ROLLBACK TO job; RELEASE job")
    };
    match (result, ended) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(error), _) => Err(error),
        (Ok(_), Err(error)) => Err(error.into()),
    }
}

/// Passive checkpoints (they never block the writer) until the database thread ends, then a
/// final one that truncates the WAL.
fn checkpoint_every_second(connection: &rusqlite::Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(std::time::Duration::from_secs(1)) {
        if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(%error, "SQLite checkpoint failed");
        }
    }
    let _ = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
}

/// The thread's loop: each round answers every waiting read, then applies every waiting write in
/// one transaction and reports its commit to each writer.
fn run(connection: &rusqlite::Connection, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        let mut stop = false;
        for job in std::iter::once(first).chain(queue.try_iter().take(MAX_ROUND - 1)) {
            match job {
                Job::Read(job) => reads.push(job),
                Job::Write(job) => writes.push(job),
                Job::Stop => stop = true,
            }
        }
        for read in reads {
            // A read that panics drops its reply (the caller sees an error); the thread goes on.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(connection)));
        }
        if !writes.is_empty() {
            let begun = connection.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string());
            let mut lost = begun.is_err();
            let mut finishers = Vec::with_capacity(writes.len());
            for write in writes {
                finishers.push(write(connection, !lost));
                // Some errors (disk full, I/O) make SQLite roll back the whole transaction; the
                // remaining jobs must not run outside it.
                lost = lost || connection.is_autocommit();
            }
            let committed = match begun {
                Err(error) => Err(error),
                Ok(()) if lost => Err("the transaction was rolled back by SQLite".to_owned()),
                Ok(()) => connection.execute_batch("COMMIT").map_err(|e| e.to_string()),
            };
            if committed.is_err() && !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            for finish in finishers {
                finish(committed.clone());
            }
        }
        if stop {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn table() -> (tempfile::TempDir, SqliteThread, Database) {
        let dir = tempfile::tempdir().unwrap();
        let thread = SqliteThread::open(&dir.path().join("t.db")).unwrap();
        let db = Database::Sqlite(thread.clone());
        db.execute(statement(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, name TEXT UNIQUE)",
            vec![],
        ))
        .await
        .unwrap();
        for id in 1..=2 {
            db.execute(statement("INSERT INTO t (id, v) VALUES ($1, 0)", vec![Param::Int(id)]))
                .await
                .unwrap();
        }
        (dir, thread, db)
    }

    /// Holds the database thread in a read until released, so that the jobs sent meanwhile are
    /// all applied in the next round, in one transaction.
    fn hold(thread: &SqliteThread) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, released) = mpsc::channel::<()>();
        let thread = thread.clone();
        let held = tokio::spawn(async move {
            thread
                .read(move |_| {
                    let _ = released.recv();
                    Ok(())
                })
                .await
                .unwrap();
        });
        (release, held)
    }

    async fn values(db: &Database) -> Vec<Row> {
        db.query(statement("SELECT id, v FROM t ORDER BY id", vec![])).await.unwrap()
    }

    fn update(id: i64, value: i64, rows: Option<u64>) -> Guarded {
        Guarded {
            statement: statement(
                "UPDATE t SET v = $1 WHERE id = $2",
                vec![Param::Int(value), Param::Int(id)],
            ),
            rows,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_compare_and_swap_rolls_back_only_its_own_job_in_a_shared_round() {
        let (_dir, thread, db) = table().await;
        let (release, held) = hold(&thread);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (a, b) = (db.clone(), db.clone());
        let failing = tokio::spawn(async move {
            a.atomically(vec![update(1, 7, Some(1)), update(99, 7, Some(1))], vec![]).await
        });
        let passing = tokio::spawn(async move { b.atomically(vec![update(2, 8, Some(1))], vec![]).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap();
        assert!(failing.await.unwrap().unwrap().is_none(), "the job whose guard failed reports it");
        assert!(passing.await.unwrap().unwrap().is_some());
        assert_eq!(
            values(&db).await,
            vec![vec![Value::Int(1), Value::Int(0)], vec![Value::Int(2), Value::Int(8)]]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_constraint_error_fails_only_its_own_job() {
        let (_dir, thread, db) = table().await;
        let name = |id: i64, name: &str| Guarded {
            statement: statement(
                "UPDATE t SET name = $1 WHERE id = $2",
                vec![Param::Text(name.into()), Param::Int(id)],
            ),
            rows: Some(1),
        };
        let (release, held) = hold(&thread);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // `join!` polls in order, and each job is queued on its first poll: the first job is
        // ahead of the second in the round.
        let (first, second, ()) = tokio::join!(
            db.atomically(vec![name(1, "x"), update(1, 5, None)], vec![]),
            db.atomically(vec![update(2, 6, None), name(2, "x")], vec![]),
            async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                release.send(()).unwrap();
            },
        );
        held.await.unwrap();
        let outcomes = [first, second];
        assert!(outcomes[0].as_ref().unwrap().is_some());
        assert!(matches!(outcomes[1], Err(StoreError::Sqlite(_))), "{:?}", outcomes[1].as_ref().err());
        assert_eq!(
            values(&db).await,
            vec![vec![Value::Int(1), Value::Int(5)], vec![Value::Int(2), Value::Int(0)]]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_does_not_stop_the_database() {
        let (_dir, thread, db) = table().await;
        #[allow(clippy::panic)]
        let failed = thread.read::<()>(|_| panic!("a bug in a job")).await;
        assert!(matches!(failed, Err(StoreError::Closed)));
        assert_eq!(values(&db).await.len(), 2, "the thread still answers");
        db.close().await;
        assert!(matches!(db.query(statement("SELECT 1", vec![])).await, Err(StoreError::Closed)));
    }
}
