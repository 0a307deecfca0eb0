//! Atomic file replacement: the one way every writer in the workspace puts a file in place.
//!
//! A file is written to a uniquely named temporary file in the target's directory, fsynced,
//! renamed over the target, and then the directory is fsynced so that the rename itself
//! survives a power cut. Readers therefore see the old file or the new one, never a
//! half-written one, and a crash leaves at most a stray `.hers-tmp-*` file that nothing reads.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory a file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in `dir` durable. Not every platform or file system can fsync a directory,
/// so this is best effort: the file's own data was already synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `path` atomically through `write`, which fills the temporary file. `private` files
/// (secret keys) are created readable by their owner only (0600 on Unix), others 0644.
pub fn write_atomic_with(
    path: &Path,
    private: bool,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".hers-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(if private { 0o600 } else { 0o644 }));
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut tmp = builder.tempfile_in(&dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(&dir);
    Ok(())
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, false, |f| f.write_all(bytes))
}

/// Puts a finished temporary file `tmp` in place as `path`: fsync, rename, directory fsync.
/// For writers that must be given a path rather than a file (e.g. burn's recorders); `tmp`
/// must be in the same directory as `path`.
pub fn commit_atomic(tmp: &Path, path: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    sync_dir(&parent_dir(path));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second, longer").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"kept").expect("write");
        let err = write_atomic_with(&path, false, |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"kept");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret");
        write_atomic_with(&path, true, |f| f.write_all(b"s")).expect("write");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }
}
