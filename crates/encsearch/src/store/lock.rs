//! One writer per gallery: an OS file lock on `writer.lock` in the gallery directory, held by
//! whatever changes the gallery (enrolment, removal, repair, a service) for as long as it
//! writes. The operating system releases it when the holder exits or dies, so a crash never
//! leaves a gallery locked. Readers take no lock: they read the manifest version they opened.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name of the writer lock in a gallery directory.
pub const LOCK_FILE: &str = "writer.lock";

/// What to do when another process holds the writer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Block until the holder releases it.
    #[default]
    Wait,
    /// Fail at once with [`Error::GalleryLocked`].
    NoWait,
}

/// A held writer lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the writer lock of the gallery directory `dir`. When another process holds it,
    /// `on_wait` is called with the holder's pid (if it wrote one) before blocking, or the call
    /// fails at once under [`LockWait::NoWait`].
    pub fn acquire(dir: &Path, wait: LockWait, on_wait: impl FnOnce(Option<u32>)) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = holder_pid(&mut file);
                match wait {
                    LockWait::NoWait => return Err(Error::GalleryLocked { dir: dir.to_path_buf(), pid }),
                    LockWait::Wait => {
                        on_wait(pid);
                        file.lock().map_err(|e| Error::io(&path, e))?;
                    }
                }
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Record the holder for the next process that finds the lock taken.
        let record = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, "{}", std::process::id())?;
            f.flush()
        };
        record(&mut file).map_err(|e| Error::io(&path, e))?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Best effort: the OS drops the lock with the file descriptor anyway.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The pid the current holder wrote into the lock file, if any.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_or_waits_and_names_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = WriterLock::acquire(dir.path(), LockWait::NoWait, |_| {}).expect("first");
        // Locks are per open file description, so a second open in this process conflicts too.
        let e = WriterLock::acquire(dir.path(), LockWait::NoWait, |_| {}).expect_err("second");
        match e {
            Error::GalleryLocked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other}"),
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let dir = dir.path().to_path_buf();
            move || {
                WriterLock::acquire(&dir, LockWait::Wait, |pid| {
                    let _ = tx.send(pid);
                })
                .map(|_| ())
            }
        });
        let pid = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the waiter found the lock taken");
        assert_eq!(pid, Some(std::process::id()));
        drop(held);
        waiter.join().expect("join").expect("acquired after release");
    }
}
