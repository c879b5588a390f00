//! `seed`: makes sure the admin user (and, with `ADMIN_TOKEN`, its token) exists;
//! `--demo USERS POSTS` adds deterministic demo data for benchmarks. Running it
//! again changes nothing.

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use db::Db;
use domain::models::post::NewPost;
use domain::models::token::ADMIN_TOKEN_LABEL;
use domain::models::user::NewUser;
use domain::{Post, Role, Timestamp, Token};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(about = "Seed the database: admin user, admin token, optional demo data")]
struct Args {
    /// Also create USERS demo users and POSTS demo posts (idempotent).
    #[arg(long, num_args = 2, value_names = ["USERS", "POSTS"])]
    demo: Option<Vec<u64>>,
    /// Bearer token to register for the admin user (at least 16 characters)
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    #[command(flatten)]
    db: db::ConfigArgs,
}

const ADMIN_ID: &str = "admin-001";
/// Demo rows are spread back in time from this instant, so reruns are identical.
const DEMO_EPOCH: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const BATCH: usize = 1_000;
const BATCHES_PER_TRANSACTION: usize = 10;

fn main() -> anyhow::Result<()> {
    // Before anything is created: the database and its backups are private.
    db::restrict_new_files();
    domain::install_search();
    // Before the arguments: `.env` fills in what the environment leaves unset.
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => return Err(err).context("reading .env"),
        _ => {}
    }
    let args = Args::parse();
    let db = Db::open(&args.db.into())?;
    db.migrator(db::MIGRATIONS)
        .ensure_current()
        .context("seed needs an up-to-date schema")?;

    let admin = NewUser {
        id: ADMIN_ID.into(),
        email: "admin@example.com".into(),
        name: "Admin".into(),
        role: Role::Admin,
        created_at: Timestamp::now(),
    };
    let created = db.write(|c| admin.insert_if_absent(c))?;
    println!(
        "admin {ADMIN_ID}: {}",
        if created {
            "created"
        } else {
            "already present"
        }
    );
    if let Some(token) = args.admin_token.filter(|t| !t.is_empty()) {
        check_admin_token(&token)?;
        let now = Timestamp::now();
        let revoked = db.write(|c| {
            Token::register(c, ADMIN_ID, &token, ADMIN_TOKEN_LABEL, now)?;
            Token::revoke_labelled_except(c, ADMIN_ID, ADMIN_TOKEN_LABEL, &token)
        })?;
        println!("admin token from ADMIN_TOKEN: registered");
        if revoked > 0 {
            println!("admin token: the previous ADMIN_TOKEN changed, its token is revoked");
        }
    }
    if let Some(demo) = args.demo {
        let [users, posts] = demo[..] else {
            bail!("--demo takes USERS and POSTS");
        };
        seed_demo(&db, users, posts)?;
    }
    Ok(())
}

/// The shortest `ADMIN_TOKEN` the seed registers: 32 characters of a random
/// secret (`make run` writes 43) are far beyond guessing.
const ADMIN_TOKEN_MIN: usize = 32;
/// Values documentation and examples show, which must never become a credential.
const ADMIN_TOKEN_PLACEHOLDERS: [&str; 3] = [
    "change-me-local-admin-token",
    "replace-with-a-random-secret-of-32-or-more-characters",
    "your-admin-token",
];

fn check_admin_token(token: &str) -> anyhow::Result<()> {
    if ADMIN_TOKEN_PLACEHOLDERS.contains(&token) {
        bail!(
            "ADMIN_TOKEN is a placeholder from the documentation; set a random secret \
             (delete it from .env and `make run` writes one)"
        );
    }
    let length = token.chars().count();
    if length < ADMIN_TOKEN_MIN {
        bail!(
            "ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN} characters (it has {length}); \
             delete it from .env and `make run` writes a random one"
        );
    }
    Ok(())
}

fn demo_user(i: u64) -> NewUser {
    NewUser {
        id: format!("demo-{i:06}"),
        email: format!("demo-{i:06}@example.com"),
        name: format!("Demo User {i}"),
        role: Role::User,
        created_at: Timestamp::from_unix(DEMO_EPOCH - i64::try_from(i).unwrap_or(0) * 60)
            .unwrap_or_else(Timestamp::now),
    }
}

/// A small deterministic generator (SplitMix64): same seed, same demo data.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Common English words and the words of a blog about software, food and places,
/// roughly most frequent first, then a long tail of 4 628 English words (5 000 in
/// all). Demo text draws them by Zipf's law (the n-th word
/// about 1/n as often as the first), as words in real text are drawn, so a search
/// meets both words in most posts and words in few.
const VOCABULARY: &str = include_str!("words.txt");

struct Vocabulary {
    words: Vec<&'static str>,
    /// Running sums of the Zipf weights, the last one 1.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Self {
        let mut words: Vec<&'static str> = Vec::new();
        let lines = VOCABULARY.lines().filter(|line| !line.starts_with('#'));
        for word in lines.flat_map(str::split_whitespace) {
            if !words.contains(&word) {
                words.push(word);
            }
        }
        let weights: Vec<f64> = (1..=words.len()).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let cumulative = weights
            .iter()
            .scan(0.0, |sum, w| {
                *sum += w / total;
                Some(*sum)
            })
            .collect();
        Self { words, cumulative }
    }

    /// The word that the random number `x` draws.
    fn pick(&self, x: u64) -> &'static str {
        // The top 53 bits as a uniform number in [0, 1).
        let u = (x >> 11) as f64 / (1_u64 << 53) as f64;
        let at = self.cumulative.partition_point(|&c| c <= u);
        self.words[at.min(self.words.len() - 1)]
    }

    /// `count` words drawn from the stream `seed`.
    fn text(&self, seed: u64, count: u64) -> Vec<&'static str> {
        (0..count).map(|k| self.pick(mix(seed ^ mix(k)))).collect()
    }
}

struct DemoPost {
    title: String,
    content: String,
    author_id: String,
    published_at: Option<Timestamp>,
}

/// Post `i`: a title of 3 to 6 words and 24 to 40 words of content.
fn demo_post(i: u64, users: u64, vocabulary: &Vocabulary) -> DemoPost {
    let r = mix(i);
    let title = vocabulary.text(r, 3 + r % 4).join(" ");
    let body = vocabulary.text(mix(r), 24 + (r >> 8) % 17);
    // Every tenth post is a draft, so load generators can tell which ids are public.
    let published_at = (!i.is_multiple_of(10))
        .then(|| Timestamp::from_unix(DEMO_EPOCH + i64::try_from(i).unwrap_or(0)))
        .flatten();
    DemoPost {
        title: format!("Post {i}: {title}"),
        content: body.join(" "),
        author_id: format!("demo-{:06}", r % users.max(1) + 1),
        published_at,
    }
}

fn seed_demo(db: &Db, users: u64, posts: u64) -> anyhow::Result<()> {
    if users == 0 && posts > 0 {
        bail!("demo posts need at least one demo user");
    }
    let started = Instant::now();
    let new_users: Vec<NewUser> = (1..=users).map(demo_user).collect();
    let inserted = db.write(|c| NewUser::insert_many_if_absent(c, &new_users))?;
    println!(
        "demo users: {inserted} created, {} already present",
        users - inserted as u64
    );

    let ids: Vec<String> = new_users.into_iter().map(|u| u.id).collect();
    let existing = db.read(|c| Post::count_by_authors(c, &ids))?;
    let existing = u64::try_from(existing).unwrap_or(0);
    if existing >= posts {
        println!("demo posts: {existing} already present");
        return Ok(());
    }
    let bar = ProgressBar::new(posts);
    bar.set_style(
        ProgressStyle::with_template("demo posts {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(existing);
    let vocabulary = Vocabulary::new();
    let mut next = existing + 1;
    while next <= posts {
        let per_tx = (BATCH * BATCHES_PER_TRANSACTION) as u64;
        let end = (next + per_tx - 1).min(posts);
        let rows: Vec<DemoPost> = (next..=end)
            .map(|i| demo_post(i, users, &vocabulary))
            .collect();
        db.write(|c| {
            for chunk in rows.chunks(BATCH) {
                let batch: Vec<NewPost<'_>> = chunk
                    .iter()
                    .map(|p| NewPost {
                        title: &p.title,
                        content: &p.content,
                        author_id: &p.author_id,
                        published_at: p.published_at,
                    })
                    .collect();
                NewPost::insert_many(c, &batch)?;
            }
            Ok::<_, domain::Error>(())
        })?;
        bar.inc(end - next + 1);
        next = end + 1;
    }
    bar.finish();
    println!(
        "demo posts: {} created in {:.1?}",
        posts - existing,
        started.elapsed()
    );
    // A bulk load leaves the search index in many small segments: merged into one,
    // searches read it fastest and later writes do not pay for the merging.
    let merging = Instant::now();
    db.write(domain::models::search::optimize)?;
    println!("search index: merged in {:.1?}", merging.elapsed());
    Ok(())
}
