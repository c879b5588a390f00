//! Full-text search over posts (`GET /posts?q=`): the query language (words, a
//! prefix on the last word, "quoted phrases"), the expression each backend's index
//! reads (FTS5 MATCH on SQLite, a tsquery on PostgreSQL) built from the extracted
//! words only, the ranked keyset query under the visibility rules of every list,
//! and the plain-text snippet with the ranges to highlight.
//!
//! The index itself is the migration's: `posts_fts` (FTS5, kept in step by
//! triggers) on SQLite, the `posts_search_idx` GIN index on PostgreSQL. This
//! module is the one place that queries it.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};

use crate::models::post::{Post, PostFilter};
use crate::models::{per_backend, rank};
use crate::{Actor, Connection, Page, Result, Timestamp, cursor};

/// Longest accepted query, in characters after trimming.
pub const MAX_QUERY_CHARS: usize = 200;

/// How many ranked matches one request examines at most. Matches the caller may
/// not see (another user's drafts) are skipped, so when the best matches are all
/// invisible a page may come back short, even empty, with a `nextCursor` that
/// resumes after the last match examined: the work per request stays bounded
/// however many invisible matches rank first.
pub const WINDOW: i64 = 1000;

/// Why a `q` was refused; the message is shown to the caller as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub &'static str);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// A word; `prefix` for the last word typed outside quotes.
    Word {
        word: String,
        prefix: bool,
    },
    Phrase(Vec<String>),
}

/// A parsed search: the words and phrases that must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

/// A word character, as SQLite's unicode61 tokenizer reads one (letters and
/// digits); everything else separates words.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

impl SearchQuery {
    /// Reads `q`: 1..=200 characters after trimming with at least one letter or
    /// digit. Words match in any order; `"quoted words"` match as a phrase; the
    /// last word outside quotes also matches as a prefix. Punctuation separates
    /// words. Search operators that this API does not offer (FTS5's `NEAR(...)` and
    /// column filters) and an unmatched `"` are refused rather than read as words,
    /// so that nobody believes they took effect.
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let q = raw.trim();
        let chars = q.chars().count();
        if chars == 0 {
            return Err(QueryError("q must not be empty"));
        }
        if chars > MAX_QUERY_CHARS {
            return Err(QueryError("q must be at most 200 characters"));
        }
        if !q.chars().any(is_word_char) {
            return Err(QueryError("q must contain at least one letter or digit"));
        }
        if q.matches('"').count() % 2 == 1 {
            return Err(QueryError(
                "q has an unmatched double quote: quote a phrase on both sides",
            ));
        }
        if has_near(q) {
            return Err(QueryError(
                "q: NEAR(...) is not supported; words match anywhere in a post, \"quoted words\" as a phrase",
            ));
        }
        if has_column_filter(q) {
            return Err(QueryError(
                "q: column filters (title:, content:) are not supported; words match the title and the content",
            ));
        }
        let mut terms = Vec::new();
        for (n, part) in q.split('"').enumerate() {
            let words: Vec<String> = words(part).map(|(_, _, w)| w.to_owned()).collect();
            if n % 2 == 1 {
                match words.len() {
                    0 => {}
                    1 => terms.extend(words.into_iter().map(|word| Term::Word {
                        word,
                        prefix: false,
                    })),
                    _ => terms.push(Term::Phrase(words)),
                }
            } else {
                terms.extend(words.into_iter().map(|word| Term::Word {
                    word,
                    prefix: false,
                }));
            }
        }
        // As you type: the last word, unless a closing quote ended the query.
        if !q.ends_with('"')
            && let Some(Term::Word { prefix, .. }) = terms.last_mut()
        {
            *prefix = true;
        }
        Ok(Self { terms })
    }

    /// The FTS5 MATCH expression: every word double-quoted (a string to FTS5,
    /// never syntax), `*` after the prefix word, terms joined by FTS5's implicit
    /// AND. The words hold letters and digits only; quotes are doubled anyway.
    pub fn fts5(&self) -> String {
        let quote = |w: &str| format!("\"{}\"", w.replace('"', "\"\""));
        self.terms
            .iter()
            .map(|term| match term {
                Term::Word { word, prefix } => {
                    format!("{}{}", quote(word), if *prefix { "*" } else { "" })
                }
                Term::Phrase(words) => quote(&words.join(" ")),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The PostgreSQL `to_tsquery` text: quoted lexemes joined by `&`, phrases by
    /// `<->`, `:*` on the prefix word. The migration's fold (accents) and the
    /// `simple` configuration (case) are applied to it in SQL, as to the posts.
    pub fn tsquery(&self) -> String {
        let quote = |w: &str| format!("'{}'", w.replace('\'', "''"));
        self.terms
            .iter()
            .map(|term| match term {
                Term::Word { word, prefix } => {
                    format!("{}{}", quote(word), if *prefix { ":*" } else { "" })
                }
                Term::Phrase(words) => format!(
                    "({})",
                    words
                        .iter()
                        .map(|w| quote(w))
                        .collect::<Vec<_>>()
                        .join(" <-> ")
                ),
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// True when `word` (folded) is one of the query's words, or starts with the
    /// prefix word.
    fn highlights(&self, folded: &str) -> bool {
        self.terms.iter().any(|term| match term {
            Term::Word { word, prefix } => {
                let want = fold(word);
                if *prefix {
                    folded.starts_with(&want)
                } else {
                    folded == want
                }
            }
            Term::Phrase(words) => words.iter().any(|w| fold(w) == folded),
        })
    }
}

/// `NEAR(` or `NEAR (`, FTS5's proximity operator, in capitals as FTS5 reads it.
fn has_near(q: &str) -> bool {
    q.match_indices("NEAR").any(|(at, _)| {
        let before_ok = q[..at].chars().next_back().is_none_or(|c| !is_word_char(c));
        before_ok && q[at + 4..].trim_start().starts_with('(')
    })
}

/// `title:`, `content:` or `{title content}:`, FTS5's column filters.
fn has_column_filter(q: &str) -> bool {
    if q.contains("}:") || q.contains("} :") {
        return true;
    }
    words(q).any(|(_, end, word)| {
        let column = word.eq_ignore_ascii_case("title") || word.eq_ignore_ascii_case("content");
        column && q[end..].trim_start().starts_with(':')
    })
}

/// The words of `text`: (byte start, byte end, word).
fn words(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while rest.peek().is_some_and(|&(_, c)| !is_word_char(c)) {
            rest.next();
        }
        let &(start, _) = rest.peek()?;
        let mut end = start;
        while let Some(&(at, c)) = rest.peek() {
            if !is_word_char(c) {
                break;
            }
            end = at + c.len_utf8();
            rest.next();
        }
        Some((start, end, &text[start..end]))
    })
}

/// Latin letters with a canonical decomposition and the letter they fold to, as
/// unicode61's `remove_diacritics 2` (and the PostgreSQL migration's
/// `posts_search_fold`) fold them.
const ACCENTED: &str = "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž";
const PLAIN: &str = "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz";

/// A word as the index compares it: accents folded, lower-cased.
fn fold(word: &str) -> String {
    if word.is_ascii() {
        // Most words: nothing to fold but the case.
        return word.to_ascii_lowercase();
    }
    word.chars()
        .map(|c| {
            ACCENTED
                .chars()
                .position(|a| a == c)
                .and_then(|at| PLAIN.chars().nth(at))
                .unwrap_or(c)
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The passage of a hit that matched: plain text, and half-open ranges (in
/// Unicode scalar values of `text`) of the words to highlight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<(usize, usize)>,
}

/// Words of context kept before the first highlighted word, and words in all.
const LEAD_WORDS: usize = 6;
const SNIPPET_WORDS: usize = 30;
const ELLIPSIS: &str = "…";

impl Snippet {
    /// The passage of the content around its first matching word, or the title
    /// when only the title matched. Built from the stored text, so nothing but
    /// that text (and an ellipsis where it was cut) is ever shown.
    fn of(post: &Post, query: &SearchQuery) -> Self {
        Self::passage(&post.content, query).unwrap_or_else(|| {
            let mut title = Self::whole(&post.title, query);
            if title.highlights.is_empty()
                && let Some(start) = Self::passage_from(&post.content, 0, query)
            {
                // Matched by something this reading misses (a script unicode61
                // folds further than `fold`): show the start of the content.
                title = start;
            }
            title
        })
    }

    fn whole(text: &str, query: &SearchQuery) -> Self {
        Self {
            text: text.to_owned(),
            highlights: ranges(text, 0, query),
        }
    }

    fn passage(content: &str, query: &SearchQuery) -> Option<Self> {
        let first = words(content).position(|(_, _, w)| query.highlights(&fold(w)))?;
        Self::passage_from(content, first.saturating_sub(LEAD_WORDS), query)
    }

    /// `SNIPPET_WORDS` words of `content` from word number `from`.
    fn passage_from(content: &str, from: usize, query: &SearchQuery) -> Option<Self> {
        let spans: Vec<(usize, usize)> = words(content)
            .skip(from)
            .take(SNIPPET_WORDS)
            .map(|(s, e, _)| (s, e))
            .collect();
        let (&(start, _), &(_, end)) = (spans.first()?, spans.last()?);
        let start = if from == 0 { 0 } else { start };
        let end = if words(&content[end..]).next().is_none() {
            content.len()
        } else {
            end
        };
        let lead = if start > 0 { ELLIPSIS } else { "" };
        let tail = if end < content.len() { ELLIPSIS } else { "" };
        let body = &content[start..end];
        Some(Self {
            text: format!("{lead}{body}{tail}"),
            highlights: ranges(body, lead.chars().count(), query),
        })
    }
}

/// Ranges of the matching words of `text`, in characters, shifted by `offset`.
fn ranges(text: &str, offset: usize, query: &SearchQuery) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chars_before = 0;
    let mut last_byte = 0;
    for (start, end, word) in words(text) {
        chars_before += text[last_byte..start].chars().count();
        let len = word.chars().count();
        if query.highlights(&fold(word)) {
            out.push((offset + chars_before, offset + chars_before + len));
        }
        chars_before += len;
        last_byte = end;
    }
    out
}

/// One post that matched, with the passage to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub post: Post,
    pub snippet: Snippet,
    /// Lower is better: SQLite's bm25, or minus PostgreSQL's `ts_rank`.
    pub score: f64,
}

#[derive(QueryableByName)]
struct Ranked {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// The best matches after a cursor among the posts whose id is `$6` modulo `$5`,
/// best first, at most `$4` of them. `$1` is the backend's query text, `$2, $3`
/// the cursor's (score, id). SQLite: bm25 over the FTS5 table, through
/// `posts_rank` (see [`rank`]), which scores only the matches that can be among
/// the best `$4`; the inner `LIMIT -1` keeps the share's filter before it and calls
/// it once per row. PostgreSQL: minus `ts_rank`, so that lower is better on both;
/// bm25 weighs a title hit 10 times a content hit. The share is tested before the
/// rank is computed, so each share ranks only its own matches.
const SQLITE_WINDOW: &str = "SELECT id, score FROM (\
     SELECT rowid AS id, posts_rank(posts_fts, ?4, ?2, ?3, 10.0, 1.0) AS score \
     FROM posts_fts WHERE posts_fts MATCH ?1 AND ((rowid % ?5) + ?5) % ?5 = ?6 LIMIT -1) \
     WHERE score IS NOT NULL AND (score, id) > (?2, ?3) ORDER BY score, id LIMIT ?4";
/// The same with FTS5's own bm25 (the same scores, every match scored), for a
/// connection opened before [`rank::install`].
const SQLITE_WINDOW_BM25: &str = "SELECT id, score FROM (\
     SELECT rowid AS id, bm25(posts_fts, 10.0, 1.0) AS score \
     FROM posts_fts WHERE posts_fts MATCH ?1 AND ((rowid % ?5) + ?5) % ?5 = ?6 LIMIT -1) \
     WHERE (score, id) > (?2, ?3) ORDER BY score, id LIMIT ?4";
const POSTGRES_WINDOW: &str = "SELECT id, score FROM (\
     SELECT id, -ts_rank(posts_search_document(title, content), query)::float8 AS score \
     FROM posts, to_tsquery('simple'::regconfig, posts_search_fold($1)) AS query \
     WHERE posts_search_document(title, content) @@ query AND ((id % $5) + $5) % $5 = $6) \
     AS matches WHERE (score, id) > ($2, $3) ORDER BY score, id LIMIT $4";

/// How many matches the first ranking of a request keeps, for a page of `limit`:
/// enough for a full page when most of the best matches are visible to the
/// caller. When fewer are, the request ranks again with the whole [`WINDOW`].
fn first_window(limit: i64) -> i64 {
    (4 * (limit + 1)).min(WINDOW)
}

/// Posts of the window fetched per statement while looking for a page of visible
/// ones: a page and one more, then as many again, up to the whole window.
fn fetch_size(limit: i64) -> usize {
    usize::try_from(limit + 1).unwrap_or(1)
}

/// One search request, run in steps so that its ranking can be split over
/// several connections at once: [`Search::window`] ranks one share of the
/// matches (by post id), [`Search::page`] merges the shares into the request's
/// window and reads the visible posts of it. Ranking is most of a search's work
/// (bm25 reads every match's length), and the shares run side by side on the
/// read threads; [`Search::run`] does it all on one connection.
///
/// A request first ranks a narrow window (a few pages' worth of the best
/// matches, so that bm25 skips most of the others: see [`rank`]); when that holds
/// too few posts the caller may see, `page` says so and the request ranks again
/// with the whole [`WINDOW`] ([`Search::widen`]). Either way the page is the one
/// the whole window gives.
#[derive(Debug, Clone)]
pub struct Search {
    actor: Actor,
    filter: PostFilter,
    query: SearchQuery,
    after: (f64, i64),
    limit: i64,
    now: Timestamp,
    /// How many of the best matches this step ranks: first narrow, then
    /// [`WINDOW`].
    window: i64,
}

/// The ranked matches of one share of a search: (score, id), best first.
#[derive(Debug, Clone, Default)]
pub struct Share(Vec<(f64, i64)>);

impl Search {
    /// A search for `actor` (under `filter`, as [`Post::list`]), resuming after
    /// `cursor`: a cursor that is not a search's is an error here, before any work.
    pub fn new(
        actor: Actor,
        filter: PostFilter,
        query: SearchQuery,
        cursor: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> Result<Self> {
        let after = match cursor {
            Some(cursor) => cursor::decode_search(cursor)?,
            None => (f64::NEG_INFINITY, i64::MIN),
        };
        let limit = crate::clamp_limit(limit);
        Ok(Self {
            actor,
            filter,
            query,
            after,
            limit,
            now,
            window: first_window(limit),
        })
    }

    /// False when nothing can be found whatever matches: an anonymous caller's
    /// drafts. Then no share need be ranked.
    pub fn can_find(&self) -> bool {
        !(self.actor.id().is_none() && self.filter.published == Some(false))
    }

    /// Share `part` of `parts` (posts whose id is `part` modulo `parts`): its best
    /// matches after the cursor, as many as this step's window.
    pub fn window(&self, conn: &mut Connection, part: u32, parts: u32) -> Result<Share> {
        let sql = match conn {
            db::AnyConnection::Pg(_) => POSTGRES_WINDOW,
            db::AnyConnection::Sqlite(_) => SQLITE_WINDOW,
        };
        let ranked = match self.ranked(conn, sql, part, parts) {
            Err(diesel::result::Error::DatabaseError(_, info))
                if sql == SQLITE_WINDOW && info.message().contains(rank::NAME) =>
            {
                self.ranked(conn, SQLITE_WINDOW_BM25, part, parts)?
            }
            other => other?,
        };
        Ok(Share(ranked))
    }

    /// The window of one share through one of the statements above.
    fn ranked(
        &self,
        conn: &mut Connection,
        sql: &str,
        part: u32,
        parts: u32,
    ) -> QueryResult<Vec<(f64, i64)>> {
        let parts = parts.max(1);
        let text = match conn {
            db::AnyConnection::Pg(_) => self.query.tsquery(),
            db::AnyConnection::Sqlite(_) => self.query.fts5(),
        };
        let ranked: Vec<Ranked> = per_backend!(conn, |c| {
            diesel::sql_query(sql)
                .bind::<Text, _>(&text)
                .bind::<Double, _>(self.after.0)
                .bind::<BigInt, _>(self.after.1)
                .bind::<BigInt, _>(self.window)
                .bind::<BigInt, _>(i64::from(parts))
                .bind::<BigInt, _>(i64::from(part % parts))
                .load(c)
        })?;
        Ok(ranked.into_iter().map(|r| (r.score, r.id)).collect())
    }

    /// The next step after [`Search::page`] found this window too narrow: the
    /// same search over the whole [`WINDOW`].
    pub fn widen(&mut self) {
        self.window = WINDOW;
    }

    /// The page: the shares merged into the request's window (the best matches
    /// after the cursor, however many shares), and its first `limit` posts the
    /// caller may see. When the whole [`WINDOW`] held fewer, the next cursor
    /// resumes after the window's last match, so the work per request stays
    /// bounded however many invisible matches rank first. None when this step's
    /// window was narrower than [`WINDOW`] and held too few: rank again after
    /// [`Search::widen`].
    pub fn page(&self, conn: &mut Connection, shares: Vec<Share>) -> Result<Option<Page<Hit>>> {
        let mut window: Vec<(f64, i64)> = shares.into_iter().flat_map(|s| s.0).collect();
        window.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let window_len = usize::try_from(self.window).unwrap_or(usize::MAX);
        window.truncate(window_len);
        let wanted = fetch_size(self.limit);
        let mut found: Vec<Hit> = Vec::new();
        let mut fetch = wanted;
        let mut rest = window.as_slice();
        while found.len() < wanted && !rest.is_empty() {
            let (chunk, after) = rest.split_at(fetch.min(rest.len()));
            rest = after;
            fetch = fetch.saturating_mul(2);
            let ids: Vec<i64> = chunk.iter().map(|&(_, id)| id).collect();
            let mut posts: std::collections::HashMap<i64, Post> = Post::by_ids(conn, &ids)?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
            for &(score, id) in chunk {
                let Some(post) = posts.remove(&id) else {
                    continue; // deleted since it was ranked
                };
                if self.shows(&post) && found.len() < wanted {
                    found.push(Hit {
                        snippet: Snippet::of(&post, &self.query),
                        post,
                        score,
                    });
                }
            }
        }
        if found.len() < wanted && window.len() == window_len && self.window < WINDOW {
            return Ok(None);
        }
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next_cursor = if found.len() > limit {
            found.truncate(limit);
            found
                .last()
                .map(|h| cursor::encode_search(h.score, h.post.id))
        } else if window.len() == window_len {
            window
                .last()
                .map(|&(score, id)| cursor::encode_search(score, id))
        } else {
            None
        };
        Ok(Some(Page {
            items: found,
            next_cursor,
        }))
    }

    /// The whole search on one connection.
    pub fn run(self, conn: &mut Connection) -> Result<Page<Hit>> {
        self.run_in_shares(conn, 1)
    }

    /// The whole search on one connection, ranked in `parts` shares one after
    /// another: a narrow window, then the whole one when that holds too few.
    fn run_in_shares(mut self, conn: &mut Connection, parts: u32) -> Result<Page<Hit>> {
        if !self.can_find() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        loop {
            let shares = (0..parts)
                .map(|n| self.window(conn, n, parts))
                .collect::<Result<Vec<_>>>()?;
            match self.page(conn, shares)? {
                Some(page) => return Ok(page),
                None => self.widen(),
            }
        }
    }

    /// Whether the caller sees `post` on this search's pages: visible to them,
    /// and by the author and in the published state the filter asks for.
    fn shows(&self, post: &Post) -> bool {
        post.visible_to(&self.actor, self.now)
            && self
                .filter
                .author_id
                .as_ref()
                .is_none_or(|author| *author == post.author_id)
            && self
                .filter
                .published
                .is_none_or(|published| published == post.is_public(self.now))
    }
}

impl Post {
    /// Posts `actor` may see that match `query`, best first (under `filter`, as
    /// [`Post::list`]), paged by a cursor on (score, id). Each request examines
    /// at most [`WINDOW`] matches after the cursor. On one connection; see
    /// [`Search`] for the steps that can share the ranking among several.
    pub fn search(
        conn: &mut Connection,
        actor: &Actor,
        filter: &PostFilter,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> Result<Page<Hit>> {
        Search::new(
            actor.clone(),
            filter.clone(),
            query.clone(),
            cursor,
            limit,
            now,
        )?
        .run(conn)
    }
}

/// Posts indexed per statement while rebuilding: each step reports progress.
const REBUILD_BATCH: i64 = 20_000;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct LastId {
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
}

/// Rebuilds the search index from the posts, calling `progress(done, total)` as
/// it goes; returns how many posts it indexed. Run it in one write transaction.
/// SQLite: the FTS5 table is emptied, filled again in batches by id, and merged
/// into one segment (`optimize`), which later searches read fastest.
/// PostgreSQL: `REINDEX INDEX posts_search_idx` (one statement, no steps).
pub fn rebuild(conn: &mut Connection, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
    let total: i64 = Post::count(conn)?;
    let total = u64::try_from(total).unwrap_or_default();
    progress(0, total);
    match conn {
        db::AnyConnection::Pg(c) => {
            diesel::sql_query("REINDEX INDEX posts_search_idx").execute(c)?;
        }
        db::AnyConnection::Sqlite(c) => {
            diesel::sql_query("INSERT INTO posts_fts (posts_fts) VALUES ('delete-all')")
                .execute(c)?;
            let (mut after, mut done) = (i64::MIN, 0_u64);
            loop {
                let last: LastId = diesel::sql_query(
                    "SELECT max(id) AS id FROM (SELECT id FROM posts WHERE id > ? ORDER BY id LIMIT ?)",
                )
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(REBUILD_BATCH)
                .get_result(c)?;
                let Some(last) = last.id else { break };
                let added = diesel::sql_query(
                    "INSERT INTO posts_fts (rowid, title, content) \
                     SELECT id, title, content FROM posts WHERE id > ? AND id <= ?",
                )
                .bind::<BigInt, _>(after)
                .bind::<BigInt, _>(last)
                .execute(c)?;
                done += u64::try_from(added).unwrap_or_default();
                progress(done, total.max(done));
                after = last;
            }
        }
    }
    optimize(conn)?;
    progress(total, total);
    Ok(total)
}

/// Merges the search index into one segment after a bulk load (a rebuild, the
/// demo seed): searches read one segment fastest, and later writes start their
/// merging from there instead of from thousands of small segments. SQLite only;
/// a GIN index needs nothing of the kind.
pub fn optimize(conn: &mut Connection) -> Result<()> {
    if let db::AnyConnection::Sqlite(c) = conn {
        diesel::sql_query("INSERT INTO posts_fts (posts_fts) VALUES ('optimize')").execute(c)?;
    }
    Ok(())
}

/// Checks that the search index matches the posts: `Ok(None)` when it does, else
/// what is wrong. SQLite: FTS5's `integrity-check` against the posts (run it in a
/// write transaction: FTS5 takes it as an insert). PostgreSQL: the index exists
/// and is valid.
pub fn check(conn: &mut Connection) -> Result<Option<String>> {
    match conn {
        db::AnyConnection::Pg(c) => {
            let valid: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
                 WHERE i.relname = 'posts_search_idx' AND i.relnamespace = current_schema()::regnamespace \
                 AND ix.indisvalid AND ix.indisready",
            )
            .get_result(c)?;
            // A valid GIN index holds every row: it cannot lag behind the posts.
            Ok((valid.n != 1).then(|| "the index posts_search_idx is missing or invalid".into()))
        }
        db::AnyConnection::Sqlite(c) => {
            match diesel::sql_query(
                "INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)",
            )
            .execute(c)
            {
                Ok(_) => Ok(None),
                Err(diesel::result::Error::DatabaseError(_, info))
                    if info.message().contains("malformed") =>
                {
                    Ok(Some(format!(
                        "the search index does not match the posts ({})",
                        info.message()
                    )))
                }
                Err(other) => Err(other.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::post::NewPost;
    use crate::test_support::{NOW, at, member};
    use crate::{Role, test_support};

    fn users(conn: &mut Connection) {
        for (id, role) in [
            ("ann", Role::User),
            ("bob", Role::User),
            ("root", Role::Admin),
        ] {
            test_support::user(conn, id, role);
        }
    }

    fn post(conn: &mut Connection, author: &str, title: &str, content: &str, public: bool) -> i64 {
        NewPost {
            title,
            content,
            author_id: author,
            published_at: public.then(|| at(NOW - 10)),
        }
        .insert(conn)
        .unwrap()
        .id
    }

    fn search(conn: &mut Connection, actor: &Actor, q: &str) -> Vec<i64> {
        search_with(conn, actor, q, PostFilter::default())
    }

    fn search_with(conn: &mut Connection, actor: &Actor, q: &str, filter: PostFilter) -> Vec<i64> {
        let query = SearchQuery::parse(q).unwrap();
        Post::search(conn, actor, &filter, &query, None, 100, at(NOW))
            .unwrap()
            .items
            .iter()
            .map(|h| h.post.id)
            .collect()
    }

    #[test]
    fn refuses_what_it_cannot_read_with_a_reason() {
        for (q, says) in [
            ("", "empty"),
            ("   ", "empty"),
            ("*", "letter or digit"),
            ("\" * - ( )", "letter or digit"),
            (&"a".repeat(201), "at most 200"),
            (&"word ".repeat(2000), "at most 200"),
            ("\"rust lang", "unmatched double quote"),
            ("rust \"lang\" \"", "unmatched double quote"),
            ("NEAR(rust lang)", "NEAR"),
            ("a NEAR (b c)", "NEAR"),
            ("title:rust", "column filters"),
            ("Content : rust", "column filters"),
            ("{title content}: rust", "column filters"),
        ] {
            let err = SearchQuery::parse(q).unwrap_err();
            assert!(err.0.contains(says), "{q:?}: {err}");
        }
        // Words that merely look alike are words.
        for q in [
            "near the sea",
            "NEARBY(x)",
            "subtitle: no",
            "12:30",
            "c++",
            "a*b",
        ] {
            assert!(SearchQuery::parse(q).is_ok(), "{q:?}");
        }
    }

    #[test]
    fn expressions_are_built_from_words_only() {
        let q = SearchQuery::parse(r#"  Rust "Café au lait" OR x) AND(*NOT^ lo"#).unwrap();
        assert_eq!(
            q.fts5(),
            r#""Rust" "Café au lait" "OR" "x" "AND" "NOT" "lo"*"#
        );
        assert_eq!(
            q.tsquery(),
            "'Rust' & ('Café' <-> 'au' <-> 'lait') & 'OR' & 'x' & 'AND' & 'NOT' & 'lo':*"
        );
        // A closing quote ends the typing: no prefix.
        assert_eq!(
            SearchQuery::parse(r#"rust "go""#).unwrap().fts5(),
            r#""rust" "go""#
        );
        assert_eq!(SearchQuery::parse("it's").unwrap().fts5(), r#""it" "s"*"#);
    }

    #[test]
    fn snippets_are_plain_text_with_character_ranges() {
        let query = SearchQuery::parse("cafe lon").unwrap();
        let words: Vec<String> = (0..80).map(|n| format!("w{n}")).collect();
        let content = format!(
            "{} <b>Café</b> in London; {}",
            words[..20].join(" "),
            words[20..].join(" ")
        );
        let hit = Post {
            id: 1,
            title: "Title".into(),
            content,
            author_id: "ann".into(),
            published_at: None,
        };
        let snippet = Snippet::of(&hit, &query);
        // Six words of lead ("b" of the markup is a word too), thirty in all.
        assert!(snippet.text.starts_with("…w15 w16 "), "{}", snippet.text);
        assert!(snippet.text.ends_with(" w39…"), "{}", snippet.text);
        let marked: Vec<String> = snippet
            .highlights
            .iter()
            .map(|&(s, e)| snippet.text.chars().skip(s).take(e - s).collect())
            .collect();
        assert_eq!(marked, ["Café", "London"]);
        // Only the title matched: the whole title.
        let query = SearchQuery::parse("title").unwrap();
        let snippet = Snippet::of(&hit, &query);
        assert_eq!(
            (snippet.text.as_str(), snippet.highlights),
            ("Title", vec![(0, 5)])
        );
    }

    #[test]
    fn ranks_title_over_content_folds_case_and_accents_and_types_ahead() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        let in_content = post(c, "ann", "Notes", "We ate at a café near the river", true);
        let in_title = post(c, "ann", "The best CAFÉ", "A review of coffee places", true);
        let rust = post(
            c,
            "bob",
            "Rust ownership",
            "Borrowing in Rust explained",
            true,
        );
        let phrase = post(c, "bob", "Trains", "the quick brown fox jumps", true);
        let scattered = post(c, "bob", "Foxes", "brown bears and a quick fox", true);
        let anon = &Actor::Anonymous;
        assert_eq!(search(c, anon, "cafe"), [in_title, in_content]);
        assert_eq!(search(c, anon, "Café"), [in_title, in_content]);
        assert_eq!(search(c, anon, "rus"), [rust]);
        assert_eq!(search(c, anon, "owner rust"), Vec::<i64>::new());
        assert_eq!(search(c, anon, "rust owner"), [rust]);
        let mut both = search(c, anon, "quick fox");
        both.sort_unstable();
        assert_eq!(both, [phrase, scattered]);
        assert_eq!(search(c, anon, "\"quick brown fox\""), [phrase]);
        assert_eq!(search(c, anon, "zebra"), Vec::<i64>::new());
    }

    #[test]
    fn visibility_and_filters_as_every_list() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        let a_pub = post(c, "ann", "kiwi", "", true);
        let a_draft = post(c, "ann", "kiwi", "", false);
        let b_pub = post(c, "bob", "kiwi", "", true);
        let b_draft = post(c, "bob", "kiwi", "", false);
        let sorted = |mut v: Vec<i64>| {
            v.sort_unstable();
            v
        };
        let ann = member("ann", Role::User);
        let root = member("root", Role::Admin);
        assert_eq!(sorted(search(c, &Actor::Anonymous, "kiwi")), [a_pub, b_pub]);
        assert_eq!(sorted(search(c, &ann, "kiwi")), [a_pub, a_draft, b_pub]);
        assert_eq!(
            sorted(search(c, &root, "kiwi")),
            [a_pub, a_draft, b_pub, b_draft]
        );
        let drafts = PostFilter {
            published: Some(false),
            ..Default::default()
        };
        assert_eq!(search_with(c, &ann, "kiwi", drafts.clone()), [a_draft]);
        assert!(search_with(c, &Actor::Anonymous, "kiwi", drafts).is_empty());
        let by_bob = PostFilter {
            author_id: Some("bob".into()),
            published: Some(true),
        };
        assert_eq!(search_with(c, &root, "kiwi", by_bob), [b_pub]);
    }

    #[test]
    fn pages_follow_the_rank_and_cover_every_hit_once() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        // Ties and different scores: the title repeats the word a varying number
        // of times.
        let mut all = Vec::new();
        for n in 0..23 {
            let title = "lemon ".repeat(n % 4 + 1);
            all.push(post(c, "ann", &title, "a lemon tart", true));
        }
        let query = SearchQuery::parse("lemon").unwrap();
        let filter = PostFilter::default();
        let one_page =
            Post::search(c, &Actor::Anonymous, &filter, &query, None, 100, at(NOW)).unwrap();
        assert!(one_page.next_cursor.is_none());
        let best_first: Vec<i64> = one_page.items.iter().map(|h| h.post.id).collect();
        assert!(one_page.items.windows(2).all(|w| w[0].score <= w[1].score));
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = Post::search(
                c,
                &Actor::Anonymous,
                &filter,
                &query,
                cursor.as_deref(),
                5,
                at(NOW),
            )
            .unwrap();
            seen.extend(page.items.iter().map(|h| h.post.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, best_first);
        all.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, all);
        let foreign = cursor::encode_post(3);
        assert!(matches!(
            Post::search(
                c,
                &Actor::Anonymous,
                &filter,
                &query,
                Some(&foreign),
                5,
                at(NOW)
            ),
            Err(crate::Error::Cursor(_))
        ));
    }

    /// Ranked in shares (as the server does, one per read thread), a search pages
    /// exactly as on one connection: the same posts, order and cursors, with
    /// ties and drafts among the best matches (and see the test below for a
    /// window smaller than the matches).
    #[test]
    fn shares_rank_as_one_connection() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        for n in 0..40 {
            let title = "plum ".repeat(n % 3 + 1);
            let content = format!("{} and a pear", "plum ".repeat(n % 5));
            post(
                c,
                if n % 4 == 0 { "bob" } else { "ann" },
                &title,
                &content,
                n % 4 != 0,
            );
        }
        let query = SearchQuery::parse("plum").unwrap();
        let pages = |c: &mut Connection, parts: u32, actor: &Actor| {
            let mut out = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let search = Search::new(
                    actor.clone(),
                    PostFilter::default(),
                    query.clone(),
                    cursor.as_deref(),
                    3,
                    at(NOW),
                )
                .unwrap();
                let page = search.run_in_shares(c, parts).unwrap();
                out.push((
                    page.items.iter().map(|h| h.post.id).collect::<Vec<_>>(),
                    page.next_cursor.clone(),
                ));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break out,
                }
            }
        };
        for actor in [Actor::Anonymous, member("bob", Role::User)] {
            let one = pages(c, 1, &actor);
            assert!(one.len() > 5, "several pages: {one:?}");
            for parts in [2, 3, 7] {
                assert_eq!(pages(c, parts, &actor), one, "{parts} shares");
            }
        }
    }

    /// `posts_rank` keeps exactly what bm25 keeps: for words, prefixes and
    /// phrases, narrow and wide windows, shares and cursors, the window through it
    /// is the window through FTS5's own bm25, the same posts with the same scores
    /// to the bit.
    #[test]
    fn posts_rank_keeps_what_bm25_keeps() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        if !matches!(c, db::AnyConnection::Sqlite(_)) {
            return; // FTS5 only
        }
        users(c);
        let words = [
            "plum", "pear", "plumage", "apple", "pearl", "fig", "plumber", "grape", "peach", "kiwi",
        ];
        let mut seed = 7_u64;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap() % n
        };
        let mut text = |most: usize| {
            let n = next(most) + 1;
            (0..n)
                .map(|_| words[next(words.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let texts: Vec<(String, String)> = (0..600).map(|_| (text(4), text(40))).collect();
        let rows: Vec<NewPost<'_>> = texts
            .iter()
            .map(|(title, content)| NewPost {
                title,
                content,
                author_id: "ann",
                published_at: Some(at(NOW - 10)),
            })
            .collect();
        for chunk in rows.chunks(200) {
            NewPost::insert_many(c, chunk).unwrap();
        }
        let bits = |w: &[(f64, i64)]| {
            w.iter()
                .map(|&(s, id)| (s.to_bits(), id))
                .collect::<Vec<_>>()
        };
        for q in ["plum", "pl", "pear fig", "\"apple pearl\"", "kiwi pea"] {
            for window in [1, 7, 50, WINDOW] {
                for parts in [1, 3] {
                    let mut search = Search::new(
                        Actor::Anonymous,
                        PostFilter::default(),
                        SearchQuery::parse(q).unwrap(),
                        None,
                        20,
                        at(NOW),
                    )
                    .unwrap();
                    search.window = window;
                    let mut windows = 0;
                    loop {
                        let mut last = None;
                        for part in 0..parts {
                            let ours = search.ranked(c, SQLITE_WINDOW, part, parts).unwrap();
                            let bm25 = search.ranked(c, SQLITE_WINDOW_BM25, part, parts).unwrap();
                            assert_eq!(
                                bits(&ours),
                                bits(&bm25),
                                "{q} window {window} share {part}/{parts}"
                            );
                            if part == 0 {
                                last = (ours.len() == usize::try_from(window).unwrap())
                                    .then(|| ours.last().copied())
                                    .flatten();
                            }
                        }
                        windows += 1;
                        match last {
                            Some(after) => search.after = after,
                            None => break,
                        }
                    }
                    assert!(
                        window > 7 || windows > 1,
                        "{q}: paged past {windows} windows"
                    );
                }
            }
        }
    }

    /// Thousands of another user's drafts rank above the one public match: each
    /// request examines one window of matches, so the first pages come back empty
    /// with a cursor instead of walking every draft, and paging on finds the post.
    #[test]
    fn invisible_best_matches_bound_the_work_per_request() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        let drafts = usize::try_from(WINDOW).unwrap() * 3 + 500;
        let rows: Vec<NewPost<'_>> = (0..drafts)
            .map(|_| NewPost {
                title: "secret plan",
                content: "secret",
                author_id: "bob",
                published_at: None,
            })
            .collect();
        for chunk in rows.chunks(500) {
            NewPost::insert_many(c, chunk).unwrap();
        }
        let public = post(c, "ann", "Notes", "a plan that is secret", true);
        let query = SearchQuery::parse("secret").unwrap();
        // On one connection, and in three shares merged into one window.
        for parts in [1, 3] {
            let mut cursor: Option<String> = None;
            let mut requests = 0;
            let found = loop {
                requests += 1;
                let search = Search::new(
                    Actor::Anonymous,
                    PostFilter::default(),
                    query.clone(),
                    cursor.as_deref(),
                    20,
                    at(NOW),
                )
                .unwrap();
                let page = search.run_in_shares(c, parts).unwrap();
                if !page.items.is_empty() {
                    break page.items;
                }
                cursor = Some(
                    page.next_cursor
                        .expect("an empty page of a bounded window resumes"),
                );
            };
            assert_eq!(
                found.iter().map(|h| h.post.id).collect::<Vec<_>>(),
                [public]
            );
            // Each request examined at most one window: 3500 drafts take 4 requests.
            assert_eq!(requests, drafts.div_ceil(usize::try_from(WINDOW).unwrap()));
        }
    }

    /// A write that bypassed the triggers leaves the index behind: the check says
    /// so, and a rebuild finds the post again.
    #[test]
    fn check_finds_a_stale_index_and_rebuild_repairs_it() {
        use diesel::connection::SimpleConnection;
        let mut db = test_support::db();
        let c = &mut db.conn;
        users(c);
        let before = post(c, "ann", "Quince jam", "", true);
        assert_eq!(check(c).unwrap(), None);
        let mut steps = Vec::new();
        assert_eq!(
            rebuild(c, &mut |done, total| steps.push((done, total))).unwrap(),
            1
        );
        assert_eq!(steps.last(), Some(&(1, 1)));
        if let db::AnyConnection::Sqlite(raw) = c {
            raw.batch_execute(
                "DROP TRIGGER posts_fts_after_insert; \
                 INSERT INTO posts (title, content, author_id, published_at) \
                 VALUES ('Quince tart', '', 'ann', 1)",
            )
            .unwrap();
            assert_eq!(search(c, &Actor::Anonymous, "quince"), [before]);
            let stale = check(c).unwrap().unwrap();
            assert!(stale.contains("does not match"), "{stale}");
            rebuild(c, &mut |_, _| {}).unwrap();
        }
        assert_eq!(check(c).unwrap(), None);
        let mut found = search(c, &Actor::Anonymous, "quince");
        found.sort_unstable();
        assert_eq!(found.first(), Some(&before));
    }
}
