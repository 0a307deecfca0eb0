//! `hers cluster` across network namespaces: three processes on network stacks of their own,
//! joined by shaped veth links, driven by `scripts/netns-cluster.sh` (the recipe the cluster
//! docs name). Needs root (CAP_NET_ADMIN) to make namespaces; says it skipped otherwise.

mod common;

use std::process::Command;

use common::exe;

fn left_behind() -> Vec<String> {
    let netns = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    let links = Command::new("ip").args(["-o", "link"]).output().map(|o| o.stdout).unwrap_or_default();
    let text = String::from_utf8_lossy(&netns).to_string() + &String::from_utf8_lossy(&links);
    text.lines()
        .filter(|l| l.contains("hers-ns") || l.contains("hers-br") || l.contains("hns"))
        .map(String::from)
        .collect()
}

#[test]
fn a_cluster_across_namespaces_answers_survives_a_kill_and_a_cut_link_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/netns-cluster.sh");
    let out =
        Command::new("bash").arg(script).arg(exe()).arg(tmp.path()).arg("1gbit").output().expect("run the script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("skipped: needs CAP_NET_ADMIN") {
        eprintln!("skipped: needs CAP_NET_ADMIN");
        return;
    }
    assert!(out.status.success() && stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    for step in ["1. searches", "2. enrol", "3. restarted", "4. link down mid-query", "4. the link back"] {
        assert!(stderr.contains(step), "no step {step:?} in\n{stderr}");
    }
    assert_eq!(left_behind(), Vec::<String>::new(), "namespaces or links left behind");
}
