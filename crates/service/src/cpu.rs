//! CPU time this process has used, for `/metrics` (`process_cpu_seconds_total`, the
//! Prometheus convention) and for `hers bench serve`, which compares the server's CPU per
//! query with the kernel's alone: on one machine the load generator's own CPU would otherwise
//! count against the server.

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds of this process (all threads), from `/proc/self/stat`;
/// `None` where there is no such file (not Linux) or it cannot be read.
pub fn process_cpu_seconds() -> Option<f64> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// utime + stime of a `/proc/<pid>/stat` line: fields 14 and 15, counted after the command
/// name's closing parenthesis (the name may hold spaces and parentheses).
fn parse_stat(line: &str) -> Option<f64> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_an_odd_command_name() {
        let line = "4242 (hers (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(line), Some(3.25));
        assert_eq!(parse_stat("4242 (hers) S 1"), None);
        #[cfg(target_os = "linux")]
        {
            // Burn a little CPU: the counter is this process's and does not go back.
            let before = process_cpu_seconds().expect("linux has /proc/self/stat");
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(60) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            std::hint::black_box(x);
            assert!(process_cpu_seconds().expect("again") >= before);
        }
    }
}
