//! `web move --to URL`: the command around `domain::transfer`, with a progress
//! bar while it copies and a table of counts and checksums when it is done.

use std::io::IsTerminal;

use anyhow::{Context, bail};
use domain::transfer::{self, Options, Report};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, clap::Args)]
#[command(name = "web move")]
pub struct MoveArgs {
    /// The database to copy every row into: a SQLite file or a postgres:// URL.
    /// Read from MOVE_TO when not given, so that `make move` hands it over
    /// without a shell reading it.
    #[arg(long, env = "MOVE_TO", value_name = "URL", hide_env_values = true)]
    to: db::Database,
    /// Replace the rows the target already holds (in the copy's transaction)
    #[arg(long)]
    replace: bool,
    /// Rows per batch
    #[arg(long, value_name = "ROWS", default_value_t = transfer::BATCH,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// The source: DATABASE_URL and its settings; the target takes the same settings
    #[command(flatten)]
    db: db::ConfigArgs,
}

/// Runs the move; an error when it was refused, failed, or did not verify.
pub fn run(args: MoveArgs) -> anyhow::Result<()> {
    let source_config: db::Config = args.db.into();
    let target_config = db::Config {
        database: args.to,
        ..source_config.clone()
    };
    let (from, to) = (
        source_config.database.to_string(),
        target_config.database.to_string(),
    );
    // No server may serve the target while it is filled (the source stays online).
    let _lock = db::ServerLock::acquire(&target_config)?;
    let source = db::Db::open(&source_config).with_context(|| format!("opening {from}"))?;
    let target = db::Db::open(&target_config).with_context(|| format!("opening {to}"))?;
    let options = Options {
        replace: args.replace,
        batch: args.batch as usize,
    };
    let mut progress = Progress::new();
    let report = transfer::move_data(&source, &target, options, &mut |table, done, total| {
        progress.show(table, done, total);
    })
    .with_context(|| format!("moving {from} to {to}"))?;
    progress.finish();

    for name in &report.migrated {
        println!("{to}: applied {name}");
    }
    if report.replaced > 0 {
        println!("{to}: replaced {} rows", report.replaced);
    }
    let seconds = report.copy_time.as_secs_f64();
    println!(
        "moved {} rows from {from} to {to} in {seconds:.2} s ({:.0} rows/s); verified in {:.2} s",
        report.rows(),
        report.rows() as f64 / seconds.max(1e-9),
        report.verify_time.as_secs_f64(),
    );
    if !report.restore_time.is_zero() {
        println!(
            "of which {:.2} s built the indexes and checked the foreign keys set aside for the copy",
            report.restore_time.as_secs_f64()
        );
    }
    print!("{}", table(&report));
    if !report.verified() {
        bail!(
            "the copy in {to} does not match {from}: see the table above; \
             run the move again with --replace"
        );
    }
    println!("verified: every table has the same rows and checksum on both sides");
    Ok(())
}

/// Counts and checksums, one line per table.
fn table(report: &Report) -> String {
    let mut out = format!(
        "{:<18} {:>12} {:>12}  {:<16}  {}\n",
        "table", "source rows", "target rows", "source checksum", "target checksum"
    );
    for check in &report.tables {
        out += &format!(
            "{:<18} {:>12} {:>12}  {:016x}  {:016x}  {}\n",
            check.table,
            check.source.rows,
            check.target.rows,
            check.source.checksum,
            check.target.checksum,
            if check.matches() { "ok" } else { "MISMATCH" },
        );
    }
    out
}

/// A bar on a terminal; elsewhere (logs, tests) a line per table every tenth
/// of the way.
struct Progress {
    bar: Option<ProgressBar>,
    last_tenth: u64,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg:>16} {bar:40} {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self { bar, last_tenth: 0 }
    }

    fn show(&mut self, table: &str, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            if done == 0 {
                bar.set_message(table.to_owned());
                bar.set_length(total);
            }
            bar.set_position(done);
            return;
        }
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if done == 0 {
            self.last_tenth = 0;
        } else if tenth > self.last_tenth {
            self.last_tenth = tenth;
            eprintln!("{table}: {done}/{total} rows copied");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
