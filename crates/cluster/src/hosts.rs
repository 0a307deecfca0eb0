//! The host file: one `host:port` line per process, process 0 first (timely's own format);
//! blank lines and `#` comments are skipped.

use std::path::Path;

use crate::error::{Error, Result};

/// Reads a host file; every line must be `host:port`.
pub fn read_hosts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut hosts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let port_ok = line.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !port_ok {
            return Err(Error::Config(format!(
                "{}:{}: `{line}` is not host:port (one process per line, e.g. 10.0.0.7:2101)",
                path.display(),
                n + 1
            )));
        }
        hosts.push(line.to_string());
    }
    if hosts.is_empty() {
        return Err(Error::Config(format!("{}: no host:port line", path.display())));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_skip_comments_and_refuse_lines_without_a_port() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("hosts.txt");
        std::fs::write(&p, "# cluster\n127.0.0.1:2101\n\n10.0.0.2:2102 # second\n").expect("write");
        assert_eq!(read_hosts(&p).expect("hosts"), ["127.0.0.1:2101", "10.0.0.2:2102"]);
        std::fs::write(&p, "127.0.0.1:2101\n10.0.0.2\n").expect("write");
        let e = read_hosts(&p).expect_err("no port").to_string();
        assert!(e.contains(":2:") && e.contains("host:port"), "{e}");
        std::fs::write(&p, "# nothing\n").expect("write");
        assert!(read_hosts(&p).is_err());
    }
}
