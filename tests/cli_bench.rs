//! `likely bench`: every job runs and reports the JSON contract (times are never asserted).

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> Value {
    let mut all = vec!["bench", "--json", "--reps", "2"];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_likely"))
        .args(&all)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_job_reports_its_keys() {
    let gpu = !likely::gpu::list_adapters().is_empty();
    let mut engines = vec!["cpu"];
    if gpu {
        engines.push("gpu");
    }
    for engine in engines {
        for (job, n) in [
            ("gauss-eval", "5000"),
            ("eval-poisson", "5000"),
            ("eval-categorical", "5000"),
            ("logreg-fit", "3000"),
            ("mlp-train", "4096"),
        ] {
            let j = bench(&["--job", job, "--n", n, "--engine", engine]);
            for key in [
                "job",
                "engine",
                "adapter",
                "n",
                "seconds",
                "samples_per_s",
                "gbps",
            ] {
                assert!(j.get(key).is_some(), "{engine} {job}: missing {key}: {j}");
            }
            assert_eq!(j["engine"], engine);
            if job.ends_with("fit") || job.ends_with("train") {
                assert!(j["mean_nll"].as_f64().unwrap() > 0.0, "{j}");
            }
            if engine == "gpu" && job.contains("eval") {
                assert!(
                    j["roofline_gbps"].as_f64().unwrap() > 0.0
                        && j["roofline_fraction"].as_f64().unwrap() > 0.0,
                    "{j}"
                );
            }
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_likely"))
        .args(["bench", "--job", "eval-weibull"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown job"));
}
