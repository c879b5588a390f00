//! Whether writes are failing because the disk is full, which `/ready` reports.
//!
//! A write that fails with [`db::Error::DiskFull`] marks it; the next write that
//! succeeds clears it. While it is marked, `/ready` answers 503: a load balancer
//! then sends writes to an instance that can take them. A server taken out of
//! rotation that way gets no write that could clear the mark, so `/ready` also
//! looks for room itself ([`DiskFull::probe`]) and clears the mark when there is.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use domain::Timestamp;

/// What the probe writes: room for a typical write's WAL frames (a row, its
/// index entries and a few overflow pages of 4 KiB), so that a server reported
/// ready again can take writes, not only the smallest.
const PROBE_BYTES: usize = 64 * 1024;

/// Shared by every worker; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DiskFull {
    /// Unix seconds of the first write that failed for lack of space since the
    /// last one that succeeded; 0 while writes go through.
    since: Arc<AtomicI64>,
}

impl DiskFull {
    /// Notes how a write ended: a full disk marks, a success clears, any other
    /// failure (a 404, a validation error) says nothing about space.
    pub fn record<T>(&self, outcome: &domain::Result<T>) {
        match outcome {
            Ok(_) => self.since.store(0, Ordering::Relaxed),
            Err(domain::Error::Database(db::Error::DiskFull)) => {
                // The first failure of a run is the one worth reporting.
                let _ = self.since.compare_exchange(
                    0,
                    Timestamp::now().unix(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Err(_) => {}
        }
    }

    /// Since when writes have been failing for lack of space, if they are.
    pub fn since(&self) -> Option<Timestamp> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            secs => Timestamp::from_unix(secs),
        }
    }

    /// Blocking: writes [`PROBE_BYTES`] beside `database`, fsyncs and removes
    /// them. When they fit, the disk has room again: clears the mark and returns
    /// `true`. A write that fails afterwards marks it again.
    pub fn probe(&self, database: &Path) -> bool {
        let Some(since) = self.since() else {
            return true;
        };
        let probe = probe_path(database);
        let written = write_probe(&probe);
        let _ = fs::remove_file(&probe);
        match written {
            Ok(()) => {
                let _ = self.since.compare_exchange(
                    since.unix(),
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "no room on the database's disk yet");
                false
            }
        }
    }
}

fn probe_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".space-probe");
    PathBuf::from(name)
}

fn write_probe(path: &Path) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(&[0; PROBE_BYTES])?;
    // Filesystems that allocate late (ext4, XFS) report ENOSPC here, not above.
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_marks_a_success_clears_other_failures_keep() {
        let disk = DiskFull::default();
        assert!(disk.since().is_none());
        disk.record::<()>(&Err(domain::Error::Database(db::Error::DiskFull)));
        let since = disk.since();
        assert!(since.is_some());
        disk.record::<()>(&Err(domain::Error::NotFound));
        disk.record::<()>(&Err(domain::Error::Database(db::Error::DiskFull)));
        assert_eq!(disk.since(), since);
        disk.record(&Ok(()));
        assert!(disk.since().is_none());
    }

    #[test]
    fn a_probe_that_fits_clears_the_mark_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("app.db");
        let disk = DiskFull::default();
        disk.record::<()>(&Err(domain::Error::Database(db::Error::DiskFull)));
        assert!(disk.probe(&database));
        assert!(disk.since().is_none());
        assert!(!probe_path(&database).exists());
    }
}
