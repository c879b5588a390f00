//! `posts_rank`, the FTS5 ranking function of a search window: FTS5's own bm25,
//! the same score to the bit, computed only for the matches that can still be
//! among the best `keep`.
//!
//! A search ranks every match of its words to find the best few, and bm25 reads
//! each match's length from `posts_fts_docsize`, a B-tree descent per match: most
//! of the work of a search with many matches (a prefix such as `draft` matches
//! 23 000 of a million posts). The length only makes a score smaller, so a bound
//! taken from what is known without it (the instances of each phrase, and the
//! offsets that show each column is at least so long) is the best score the match
//! can have. Once `keep` matches have been scored, a match whose bound does not
//! beat the worst of them cannot be among the best `keep`; it is not scored and
//! the function returns NULL for it. The statement keeps the non-NULL rows and
//! sorts them: the best `keep` are exactly those bm25 would have put first.
//!
//! `posts_rank(posts_fts, keep, after_score, after_id, weight...)`: the weights
//! per column as bm25's; `(after_score, after_id)` the cursor, matches at or
//! before which are not counted among the best (the statement drops them).
//!
//! SQLite calls auxiliary functions through a C API that Diesel does not wrap, so
//! this module is the workspace's one use of `unsafe`: [`install`] registers the
//! function on every SQLite connection the process opens after it (an automatic
//! extension), and the function reads FTS5's extension API. Every pointer it
//! reads comes from SQLite for the duration of the call.
#![expect(
    unsafe_code,
    reason = "FTS5 auxiliary functions exist only in SQLite's C API"
)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Once;

use libsqlite3_sys as ffi;

/// The name the statements call it by.
pub const NAME: &str = "posts_rank";

/// bm25's constants, as FTS5 sets them.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Registers `posts_rank` on every SQLite connection opened from now on in this
/// process. Call it before opening the database; calling it again does nothing.
/// A connection opened before it (or one whose SQLite has no FTS5) lacks the
/// function, and searches on it rank with bm25 itself: the same results.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: `register` has the signature SQLite calls an automatic
        // extension's entry point with.
        unsafe {
            ffi::sqlite3_auto_extension(Some(register));
        }
    });
}

/// The automatic extension's entry point, run by `sqlite3_open` on each new
/// connection: finds the connection's FTS5 API and adds the function to it. A
/// connection without FTS5 opens as it would have.
unsafe extern "C" fn register(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: `db` is the connection being opened; the statement is finalized
    // before return, and `fts5` outlives the step that writes it (FTS5's
    // documented way to get its API: `SELECT fts5(?1)` with a bound pointer).
    unsafe {
        let mut fts5: *mut ffi::fts5_api = ptr::null_mut();
        let mut statement: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let prepared = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &raw mut statement,
            ptr::null_mut(),
        );
        if prepared != ffi::SQLITE_OK {
            ffi::sqlite3_finalize(statement);
            return ffi::SQLITE_OK;
        }
        ffi::sqlite3_bind_pointer(
            statement,
            1,
            (&raw mut fts5).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(statement);
        ffi::sqlite3_finalize(statement);
        if fts5.is_null() || (*fts5).iVersion < 2 {
            return ffi::SQLITE_OK;
        }
        if let Some(create) = (*fts5).xCreateFunction {
            create(
                fts5,
                c"posts_rank".as_ptr(),
                ptr::null_mut(),
                Some(rank),
                None,
            );
        }
        ffi::SQLITE_OK
    }
}

/// The function itself: one call per matching row (or more: a repeated call for
/// the same row returns the first call's answer).
unsafe extern "C" fn rank(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    context: *mut ffi::sqlite3_context,
    count: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite passes its extension API, the cursor's context and `count`
    // argument values, all valid for this call.
    let outcome = catch_unwind(AssertUnwindSafe(|| unsafe {
        let values = match usize::try_from(count) {
            Ok(n) if n > 0 && !values.is_null() => std::slice::from_raw_parts(values, n),
            _ => &[],
        };
        Cursor { api: &*api, fts }.rank(values)
    }));
    // SAFETY: `context` is this call's result slot.
    unsafe {
        match outcome {
            Ok(Ok(Some(score))) => ffi::sqlite3_result_double(context, score),
            Ok(Ok(None)) => ffi::sqlite3_result_null(context),
            Ok(Err(code)) => ffi::sqlite3_result_error_code(context, code),
            Err(_) => ffi::sqlite3_result_error(context, c"posts_rank failed".as_ptr(), -1),
        }
    }
}

/// A (score, rowid) pair in the statement's order: lower is better.
#[derive(Debug, Clone, Copy)]
struct Key(f64, i64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// What one statement's calls share (FTS5's auxiliary data, freed with the
/// statement's cursor): bm25's statistics and the best `keep` scored so far.
#[derive(Debug)]
struct State {
    /// Per phrase of the query, as bm25 computes it.
    idf: Vec<f64>,
    /// Average row length in tokens, as bm25 computes it.
    avgdl: f64,
    /// Per column.
    weights: Vec<f64>,
    keep: usize,
    after: Key,
    /// The best scored rows after the cursor, the worst on top.
    best: BinaryHeap<Key>,
    /// The last row answered, for a repeated call.
    last: Option<(i64, Option<f64>)>,
    /// Scratch per row: weighted instances per phrase, and per column the
    /// length its instances show it has at least.
    freq: Vec<f64>,
    reach: Vec<i64>,
}

impl State {
    /// bm25 of a row whose phrases occur `freq` times (weighted) and whose length
    /// is `length` tokens, in FTS5's own order of operations.
    fn score(&self, length: f64) -> f64 {
        let mut score = 0.0;
        for (idf, &freq) in self.idf.iter().zip(&self.freq) {
            score +=
                idf * ((freq * (K1 + 1.0)) / (freq + K1 * (1.0 - B + B * length / self.avgdl)));
        }
        -score
    }
}

struct Cursor<'a> {
    api: &'a ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
}

fn check(code: c_int) -> Result<(), c_int> {
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// Counts the rows of a phrase query (bm25's hit count for its idf).
unsafe extern "C" fn count_row(
    _api: *const ffi::Fts5ExtensionApi,
    _fts: *mut ffi::Fts5Context,
    hits: *mut c_void,
) -> c_int {
    // SAFETY: `hits` is the `i64` that `State::new` passed to xQueryPhrase.
    unsafe {
        *hits.cast::<i64>() += 1;
    }
    ffi::SQLITE_OK
}

impl Cursor<'_> {
    /// This row's score, or None when it cannot be among the best `keep`.
    ///
    /// # Safety
    /// `self.fts` is the context of the current call and `values` its arguments.
    unsafe fn rank(&self, values: &[*mut ffi::sqlite3_value]) -> Result<Option<f64>, c_int> {
        let missing = ffi::SQLITE_MISUSE;
        let get = self.api.xGetAuxdata.ok_or(missing)?;
        // SAFETY: the auxiliary data of this function on this cursor is only ever
        // a `State` set below.
        let state = unsafe {
            let mut state = get(self.fts, 0).cast::<State>();
            if state.is_null() {
                let new = Box::into_raw(Box::new(self.state(values)?));
                let set = self.api.xSetAuxdata.ok_or(missing)?;
                // On failure FTS5 frees `new` itself.
                check(set(self.fts, new.cast(), Some(free_state)))?;
                state = new;
            }
            &mut *state
        };
        let rowid = unsafe { self.api.xRowid.ok_or(missing)?(self.fts) };
        if let Some((last, answer)) = state.last
            && last == rowid
        {
            return Ok(answer);
        }
        state.freq.fill(0.0);
        state.reach.fill(0);
        let mut instances: c_int = 0;
        unsafe {
            check(self.api.xInstCount.ok_or(missing)?(
                self.fts,
                &raw mut instances,
            ))?
        };
        let inst = self.api.xInst.ok_or(missing)?;
        for i in 0..instances {
            let (mut phrase, mut column, mut offset): (c_int, c_int, c_int) = (0, 0, 0);
            unsafe {
                check(inst(
                    self.fts,
                    i,
                    &raw mut phrase,
                    &raw mut column,
                    &raw mut offset,
                ))?;
            };
            let column = usize::try_from(column).map_err(|_| missing)?;
            let weight = state.weights.get(column).copied().unwrap_or(1.0);
            if let Some(freq) = usize::try_from(phrase)
                .ok()
                .and_then(|p| state.freq.get_mut(p))
            {
                *freq += weight;
            }
            if let Some(reach) = state.reach.get_mut(column) {
                *reach = (*reach).max(i64::from(offset) + 1);
            }
        }
        // Each column is at least as long as its last instance shows: with that
        // length the score is the best this row can have (a longer row scores
        // lower, in floating point too: every step of the formula is monotonic).
        let full = state.best.len() >= state.keep;
        let answer = if full
            && state.best.peek().is_some_and(|worst| {
                let shortest = state.reach.iter().sum::<i64>() as f64;
                Key(state.score(shortest), rowid) > *worst
            }) {
            None
        } else {
            let mut length: c_int = 0;
            unsafe {
                check(self.api.xColumnSize.ok_or(missing)?(
                    self.fts,
                    -1,
                    &raw mut length,
                ))?
            };
            let score = state.score(f64::from(length));
            let key = Key(score, rowid);
            if key > state.after && state.keep > 0 {
                state.best.push(key);
                if state.best.len() > state.keep {
                    state.best.pop();
                }
            }
            Some(score)
        };
        state.last = Some((rowid, answer));
        Ok(answer)
    }

    /// bm25's statistics for this statement (as `fts5Bm25GetData` computes them)
    /// and the arguments.
    unsafe fn state(&self, values: &[*mut ffi::sqlite3_value]) -> Result<State, c_int> {
        let missing = ffi::SQLITE_MISUSE;
        // SAFETY: the values are this call's arguments.
        let (keep, after_score, after_id, weights) = unsafe {
            let int = |n: usize| values.get(n).map_or(0, |&v| ffi::sqlite3_value_int64(v));
            let double = |n: usize| {
                values
                    .get(n)
                    .map_or(f64::NEG_INFINITY, |&v| ffi::sqlite3_value_double(v))
            };
            let weights: Vec<f64> = values
                .iter()
                .skip(3)
                .map(|&v| ffi::sqlite3_value_double(v))
                .collect();
            (int(0), double(1), int(2), weights)
        };
        // SAFETY: `self.fts` is the current call's context.
        unsafe {
            let phrases = usize::try_from(self.api.xPhraseCount.ok_or(missing)?(self.fts))
                .map_err(|_| missing)?;
            let columns = usize::try_from(self.api.xColumnCount.ok_or(missing)?(self.fts))
                .map_err(|_| missing)?;
            let mut rows: ffi::sqlite3_int64 = 0;
            check(self.api.xRowCount.ok_or(missing)?(self.fts, &raw mut rows))?;
            let mut tokens: ffi::sqlite3_int64 = 0;
            check(self.api.xColumnTotalSize.ok_or(missing)?(
                self.fts,
                -1,
                &raw mut tokens,
            ))?;
            let rows = rows.max(1);
            let query = self.api.xQueryPhrase.ok_or(missing)?;
            let mut idf = Vec::with_capacity(phrases);
            for phrase in 0..phrases {
                let mut hits: i64 = 0;
                check(query(
                    self.fts,
                    c_int::try_from(phrase).map_err(|_| missing)?,
                    (&raw mut hits).cast(),
                    Some(count_row),
                ))?;
                let value = (((rows - hits) as f64 + 0.5) / (hits as f64 + 0.5)).ln();
                idf.push(if value <= 0.0 { 1e-6 } else { value });
            }
            Ok(State {
                idf,
                avgdl: tokens as f64 / rows as f64,
                weights,
                keep: usize::try_from(keep).unwrap_or(0),
                after: Key(after_score, after_id),
                best: BinaryHeap::new(),
                last: None,
                freq: vec![0.0; phrases],
                reach: vec![0; columns],
            })
        }
    }
}

unsafe extern "C" fn free_state(state: *mut c_void) {
    if !state.is_null() {
        // SAFETY: only `Cursor::rank` sets this data, from `Box::into_raw`.
        drop(unsafe { Box::from_raw(state.cast::<State>()) });
    }
}
