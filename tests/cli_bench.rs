//! `likely bench`: every job runs and reports the JSON contract (times are never asserted).

mod common;

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
    // The GPU engine where there is an adapter (required under LIKELY_REQUIRE_GPU=1).
    for engine in common::backends() {
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
            if engine == "cpu" && job.contains("eval") {
                // The same-run streaming limit of the host, beside the job's rate.
                assert!(
                    j["limit_gbps"].as_f64().unwrap() > 0.0
                        && j["limit_fraction"].as_f64().unwrap() > 0.0,
                    "{j}"
                );
            }
            if engine == "cpu" && job == "logreg-fit" {
                // The model engine's row passes beside the same-run limit over their bytes.
                for key in [
                    "limit_gbps",
                    "newton_pass_seconds",
                    "newton_pass_gbps",
                    "newton_limit_fraction",
                    "least_squares_pass_seconds",
                    "least_squares_pass_gbps",
                    "least_squares_limit_fraction",
                ] {
                    assert!(j[key].as_f64().unwrap() > 0.0, "{key}: {j}");
                }
                let kind = j["newton_pass_kind"].as_str().unwrap();
                assert!(
                    ["rows-avx512", "columns-avx2", "columns"].contains(&kind),
                    "{j}"
                );
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
        .args(["bench", "--job", "eval-zipf"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown job"));
}

#[test]
fn peer_data_from_npy_files_gives_the_same_fits_as_the_same_data_drawn() {
    use likely::data::write_npy_f64_table;
    let dir = std::env::temp_dir().join(format!("likely-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The files hold exactly what likely's own generators draw, so the fits must agree.
    let logreg = likely::bench::logreg_data(3000);
    write_npy_f64_table(&dir.join("logreg-fit.x.npy"), &logreg.x, Some(logreg.d)).unwrap();
    write_npy_f64_table(&dir.join("logreg-fit.y.npy"), &logreg.y, None).unwrap();
    let mlp = likely::bench::mlp_data(2048);
    write_npy_f64_table(&dir.join("mlp-train.x.npy"), &mlp.x, Some(mlp.d)).unwrap();
    write_npy_f64_table(&dir.join("mlp-train.y.npy"), &mlp.y, None).unwrap();
    write_npy_f64_table(
        &dir.join("gauss-eval.x.npy"),
        &likely::bench::gauss_data(5000),
        None,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    for (job, n) in [("logreg-fit", "3000"), ("mlp-train", "2048")] {
        let from_file = bench(&["--job", job, "--data", d]);
        let drawn = bench(&["--job", job, "--n", n]);
        assert_eq!(from_file["n"], drawn["n"], "{job}");
        assert!(from_file["data"].as_str().unwrap().contains("peers.py"));
        assert_eq!(from_file["mean_nll"], drawn["mean_nll"], "{job}");
    }
    assert_eq!(bench(&["--job", "gauss-eval", "--data", d])["n"], 5000);
    // Errors: a job without peer data, --n beside --data, a missing file.
    for (args, needle) in [
        (vec!["--job", "eval-poisson", "--data", d], "no peer data"),
        (
            vec!["--job", "logreg-fit", "--data", d, "--n", "5"],
            "cannot be used with",
        ),
        (
            vec!["--job", "logreg-fit", "--data", "/nonexistent"],
            "/nonexistent",
        ),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(&args);
        let out = Command::new(env!("CARGO_BIN_EXE_likely"))
            .args(&all)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(needle),
            "{all:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
