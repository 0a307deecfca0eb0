//! The one file writer of the crate: atomic and durable, so an interrupted sweep never leaves a
//! half-written cell, table or config that a resumed run would take for a finished one.

use std::io::Write as _;
use std::path::Path;

use crate::Result;
use crate::error::io;

/// Writes `bytes` to `path`: a temporary file beside it is written and fsynced, renamed over
/// `path`, and the directory is fsynced, so `path` holds either the old or the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Only where directories can be opened (Unix) is the rename made durable by syncing it.
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
