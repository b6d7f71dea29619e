//! Out-of-core conditional models: tables streamed in chunks (from CSV, Parquet and .npy, or
//! from memory through a GPU whose budget they exceed) give the in-memory fits; minibatch
//! training streams too; resident memory stays bounded; bad cells deep in a file are clear
//! errors; eval and predict read chunk by chunk.

mod common;

use common::cli::{fails_with, likely, model_fit, ok_json};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Features x0..x2 and targets of every kind: yb (0/1), yc (counts), yr (real), label (text).
struct Data {
    x: Vec<[f64; 3]>,
    yb: Vec<i64>,
    yc: Vec<i64>,
    yr: Vec<f64>,
    label: Vec<String>,
}

fn data(n: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let x: Vec<[f64; 3]> = (0..n)
        .map(|_| [0; 3].map(|_| normal.sample(&mut rng)))
        .collect();
    let eta: Vec<f64> = x
        .iter()
        .map(|r| 0.3 + 0.8 * r[0] - 0.5 * r[1] + 0.1 * r[2])
        .collect();
    let yb = eta
        .iter()
        .map(|e| (rng.random::<f64>() < 1.0 / (1.0 + (-e).exp())) as i64)
        .collect();
    let yc = eta
        .iter()
        .map(|e| Poisson::new((0.5 * e).exp()).unwrap().sample(&mut rng) as i64)
        .collect();
    let yr = eta
        .iter()
        .map(|e| e + 0.7 * normal.sample(&mut rng))
        .collect();
    let label = x
        .iter()
        .map(|r| {
            let k = ((r[0] + 0.8 * normal.sample(&mut rng)).clamp(-1.5, 1.49) + 1.5) as usize;
            ["ant", "bee", "cow"][k].to_string()
        })
        .collect();
    Data {
        x,
        yb,
        yc,
        yr,
        label,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-streamed-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// CSV with numbers printed so that they parse back exactly.
fn write_csv(path: &Path, d: &Data) {
    let mut text = String::from("x0,x1,x2,yb,yc,yr,label\n");
    for i in 0..d.x.len() {
        let [a, b, c] = d.x[i];
        text += &format!(
            "{a:?},{b:?},{c:?},{},{},{:?},{}\n",
            d.yb[i], d.yc[i], d.yr[i], d.label[i]
        );
    }
    std::fs::write(path, text).unwrap();
}

/// The same columns as Parquet, in row groups of `group` rows.
fn write_parquet(path: &Path, d: &Data, group: usize) {
    let schema = parse_message_type(
        "message t { required double x0; required double x1; required double x2; \
         required int64 yb; required int64 yc; required double yr; required binary label (UTF8); }",
    )
    .unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), props).unwrap();
    let n = d.x.len();
    for start in (0..n).step_by(group) {
        let rows = start..n.min(start + group);
        let mut rg = writer.next_row_group().unwrap();
        let mut index = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            match index {
                0..=2 => {
                    let v: Vec<f64> = d.x[rows.clone()].iter().map(|r| r[index]).collect();
                    col.typed::<DoubleType>().write_batch(&v, None, None)
                }
                3 => col
                    .typed::<Int64Type>()
                    .write_batch(&d.yb[rows.clone()], None, None),
                4 => col
                    .typed::<Int64Type>()
                    .write_batch(&d.yc[rows.clone()], None, None),
                5 => col
                    .typed::<DoubleType>()
                    .write_batch(&d.yr[rows.clone()], None, None),
                _ => {
                    let v: Vec<ByteArray> = d.label[rows.clone()]
                        .iter()
                        .map(|s| ByteArray::from(s.as_str()))
                        .collect();
                    col.typed::<ByteArrayType>().write_batch(&v, None, None)
                }
            }
            .unwrap();
            col.close().unwrap();
            index += 1;
        }
        rg.close().unwrap();
    }
    writer.close().unwrap();
}

/// Relative difference, against `scale` where the values are near zero.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-3)
}

/// Every number in `a` (an object of numbers or of objects of numbers) against the same key
/// in `b`.
fn assert_close(a: &Value, b: &Value, tol: f64, what: &str) {
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            assert_eq!(ma.len(), mb.len(), "{what}: {a} vs {b}");
            for (k, va) in ma {
                assert_close(va, &mb[k], tol, &format!("{what}.{k}"));
            }
        }
        _ => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!(rel(x, y) <= tol, "{what}: {x} vs {y} (tolerance {tol})");
        }
    }
}

/// Chunks of 1024 rows: the host budget for chunked passes is 64 bytes per value.
const SMALL_HOST: [&str; 3] = ["--stream", "--host-memory", "256KiB"];

#[test]
fn streamed_linear_models_equal_in_memory_fits() {
    let dir = temp_dir("linear");
    let d = data(5000, 1);
    let (csv, pq) = (dir.join("t.csv"), dir.join("t.parquet"));
    write_csv(&csv, &d);
    write_parquet(&pq, &d, 1500);
    let cases: [(&str, &str, &str, &[&str]); 7] = [
        ("bernoulli", "yb", "newton", &["--cov", "robust"]),
        ("bernoulli", "yb", "lbfgs", &[]),
        ("gaussian", "yr", "lbfgs", &[]),
        ("gaussian", "yr", "newton", &["--prior", "l2:2"]),
        ("poisson", "yc", "newton", &["--cov", "opg"]),
        ("categorical", "label", "newton", &[]),
        ("laplace", "yr", "lbfgs", &[]),
    ];
    for path in [&csv, &pq] {
        let path = path.to_str().unwrap();
        for (family, target, optimizer, extra) in cases {
            let mut args = model_fit("linear", family, path, target, &[]);
            args.extend([
                "--features",
                "x0,x1,x2",
                "--optimizer",
                optimizer,
                "--backend",
                "cpu",
                "--json",
            ]);
            args.extend_from_slice(extra);
            let memory = ok_json(&args);
            args.extend(SMALL_HOST);
            let streamed = ok_json(&args);
            let what = format!("{family} {optimizer} {path}");
            assert_eq!(memory["streamed"], false, "{what}");
            assert_eq!(streamed["streamed"], true, "{what}");
            assert_eq!(streamed["n"], 5000, "{what}");
            assert!(streamed["converged"].as_bool().unwrap(), "{what}");
            let (nll_s, nll_m) = (
                streamed["mean_nll"].as_f64().unwrap(),
                memory["mean_nll"].as_f64().unwrap(),
            );
            if family == "laplace" {
                // The Laplace NLL is piecewise linear: L-BFGS ends on a kink that depends on
                // the last bits of the sums, at the same objective to about 1e-8.
                assert!(rel(nll_s, nll_m) <= 1e-7, "{what}: {nll_s} vs {nll_m}");
                continue;
            }
            // Newton takes the same steps on sums that differ only in the order of their
            // additions; L-BFGS stops where the gradient is below 1e-10 n, which fixes these
            // well-conditioned optima to about 1e-9.
            let tol = if optimizer == "newton" { 1e-10 } else { 1e-7 };
            assert_close(
                &streamed["coefficients"],
                &memory["coefficients"],
                tol,
                &what,
            );
            assert_close(&streamed["std_errors"], &memory["std_errors"], tol, &what);
            assert!(rel(nll_s, nll_m) <= 1e-12, "{what}: {nll_s} vs {nll_m}");
            // The goodness of fit and the null model, summed chunk by chunk.
            for key in [
                "deviance",
                "pearson_chi2",
                "llnull",
                "null_deviance",
                "llr",
                "pseudo_r2",
            ] {
                match (streamed[key].as_f64(), memory[key].as_f64()) {
                    (Some(s), Some(m)) => assert!(rel(s, m) <= 1e-9, "{what} {key}: {s} vs {m}"),
                    (s, m) => assert_eq!(s.is_some(), m.is_some(), "{what} {key}"),
                }
            }
            assert!(memory["llnull"].is_f64(), "{what}: no llnull");
            assert_eq!(streamed["df_model"], memory["df_model"], "{what}");
            for key in ["accuracy", "sigma", "b", "labels", "separation"] {
                assert_eq!(
                    streamed.get(key).is_some(),
                    memory.get(key).is_some(),
                    "{what} {key}"
                );
            }
        }
    }
    // Profile intervals re-fit on the streamed table.
    let path = pq.to_str().unwrap();
    let mut args = model_fit(
        "linear",
        "bernoulli",
        path,
        "yb",
        &["--features", "x0,x1", "--ci", "profile", "--json"],
    );
    let memory = ok_json(&args);
    args.extend(SMALL_HOST);
    let streamed = ok_json(&args);
    assert_close(&streamed["ci_low"], &memory["ci_low"], 1e-6, "profile low");
    assert_close(
        &streamed["ci_high"],
        &memory["ci_high"],
        1e-6,
        "profile high",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn npy_tables_fit_like_csv() {
    let dir = temp_dir("npy");
    let d = data(3000, 2);
    let csv = dir.join("t.csv");
    write_csv(&csv, &d);
    let values: Vec<f64> = (0..d.x.len())
        .flat_map(|i| [d.yr[i], d.x[i][0], d.x[i][1], d.x[i][2]])
        .collect();
    let npy = dir.join("t.npy");
    likely::data::write_npy_f64_table(&npy, &values, Some(4)).unwrap();
    let from_csv = ok_json(&model_fit(
        "linear",
        "gaussian",
        csv.to_str().unwrap(),
        "yr",
        &["--features", "x0,x1,x2", "--optimizer", "newton", "--json"],
    ));
    for extra in [&[][..], &SMALL_HOST] {
        let mut args = model_fit(
            "linear",
            "gaussian",
            npy.to_str().unwrap(),
            "0",
            &["--optimizer", "newton", "--json"],
        );
        args.extend_from_slice(extra);
        let from_npy = ok_json(&args);
        assert_eq!(from_npy["features"], serde_json::json!(["1", "2", "3"]));
        for (a, b) in [
            ("1", "x0"),
            ("2", "x1"),
            ("3", "x2"),
            ("intercept", "intercept"),
        ] {
            let (ours, theirs) = (
                from_npy["coefficients"][a].as_f64().unwrap(),
                from_csv["coefficients"][b].as_f64().unwrap(),
            );
            assert!(rel(ours, theirs) <= 1e-10, "{a}: {ours} vs {theirs}");
        }
    }
    let column = dir.join("one.npy");
    likely::data::write_npy_f64(&column, &d.yr).unwrap();
    fails_with(
        &model_fit("linear", "gaussian", column.to_str().unwrap(), "0", &[]),
        "a table needs a 2-D array",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_fits_through_the_gpu_match_the_cpu() {
    if common::gpu().is_none() {
        eprintln!("SKIPPED: streamed GPU model fits need a GPU adapter");
        return;
    }
    let dir = temp_dir("gpu");
    let d = data(5000, 3);
    let pq = dir.join("t.parquet");
    write_parquet(&pq, &d, 2000);
    let path = pq.to_str().unwrap();
    for (family, target, optimizer) in [("bernoulli", "yb", "newton"), ("gaussian", "yr", "lbfgs")]
    {
        let fit = |extra: &[&str]| {
            let mut args = model_fit(
                "linear",
                family,
                path,
                target,
                &["--features", "x0,x1,x2", "--optimizer", optimizer, "--json"],
            );
            args.extend_from_slice(extra);
            ok_json(&args)
        };
        let cpu = fit(&["--backend", "cpu"]);
        // In memory, streamed through GPU buffers for 1024 rows; and streamed from the file.
        let chunked = fit(&["--backend", "gpu", "--gpu-memory", "64KiB"]);
        let from_file = fit(&["--backend", "gpu", "--stream", "--host-memory", "256KiB"]);
        for gpu in [&chunked, &from_file] {
            let what = format!("{family} {optimizer}");
            assert_eq!(gpu["engine"], "gpu", "{what}");
            assert_eq!(gpu["streamed"], true, "{what}");
            assert!(gpu["adapter"].as_str().unwrap().ends_with("(streamed)"));
            // The optimum's NLL is flat to second order: f32 sums on the GPU still reach it.
            let (g, c) = (
                gpu["mean_nll"].as_f64().unwrap(),
                cpu["mean_nll"].as_f64().unwrap(),
            );
            assert!(rel(g, c) <= 1e-10, "{what}: mean NLL {g} vs {c}");
            // Coefficients move by the f32 rounding of the gradient over the curvature (about
            // 3e-7 relative on lavapipe).
            assert_close(&gpu["coefficients"], &cpu["coefficients"], 1e-5, &what);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_minibatch_training_on_both_engines() {
    let dir = temp_dir("mlp");
    let n = 3000;
    let d = data(n, 4);
    let pq = dir.join("t.parquet");
    write_parquet(&pq, &d, 1000);
    let path = pq.to_str().unwrap();
    let train = |backend: &str, extra: &[&str]| {
        let mut args = model_fit(
            "mlp",
            "categorical",
            path,
            "label",
            &[
                "--features",
                "x0,x1,x2",
                "--hidden",
                "8",
                "--epochs",
                "3",
                "--batch-size",
                "100",
                "--lr",
                "0.01",
                "--validation",
                "0.2",
                "--backend",
                backend,
                "--json",
            ],
        );
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let cpu = train("cpu", &SMALL_HOST);
    assert_eq!(cpu["streamed"], true);
    let history = cpu["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    // Hashed validation rows: about 20% of the rows, and every training row in a batch:
    // ceil(n_train / 100) steps per epoch, the rows of unfinished batches carried over.
    let held: usize = (0..n)
        .filter(|&r| likely::model::stream::held_out(0, r, 0.2))
        .count();
    assert!((500..700).contains(&held), "{held} rows held out");
    assert_eq!(
        cpu["iterations"].as_u64().unwrap() as usize,
        3 * (n - held).div_ceil(100)
    );
    assert!(history.iter().all(|h| h["validation_mean_nll"].is_number()));
    let first = history[0]["validation_mean_nll"].as_f64().unwrap();
    let last = history[2]["validation_mean_nll"].as_f64().unwrap();
    assert!(last < first, "validation loss {first} -> {last}");
    if common::gpu().is_some() {
        // The same shuffles and batches on the GPU (chunks loaded one by one) follow the CPU's
        // loss curve.
        let gpu = train("gpu", &SMALL_HOST);
        assert_eq!(gpu["iterations"], cpu["iterations"]);
        for (c, g) in history.iter().zip(gpu["history"].as_array().unwrap()) {
            for key in ["train_mean_nll", "validation_mean_nll"] {
                let (a, b) = (c[key].as_f64().unwrap(), g[key].as_f64().unwrap());
                assert!(rel(b, a) <= 1e-4, "{key}: gpu {b} vs cpu {a}");
            }
        }
    }
    fails_with(
        &model_fit(
            "mlp",
            "categorical",
            path,
            "label",
            &["--validation", "0.9999", "--stream"],
        ),
        "holds out",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_cells_deep_in_a_streamed_table_name_their_row() {
    let dir = temp_dir("errors");
    let d = data(3000, 5);
    let csv = dir.join("t.csv");
    write_csv(&csv, &d);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Row 2500 (line 2501): a word among the features; row 2700: a 2 among 0/1 targets.
    let cells: Vec<String> = lines[2500].split(',').map(String::from).collect();
    lines[2500] = format!("{},oops,{}", cells[0], cells[2..].join(","));
    let cells: Vec<String> = lines[2700].split(',').map(String::from).collect();
    lines[2700] = format!("{},2,{}", cells[..3].join(","), cells[4..].join(","));
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let bad = bad.to_str().unwrap();
    let mut args = model_fit(
        "linear",
        "bernoulli",
        bad,
        "yb",
        &["--features", "x0,x1,x2"],
    );
    args.extend(SMALL_HOST);
    fails_with(
        &args,
        "row 2500 (line 2501), column 'x1': non-numeric feature value 'oops'",
    );
    let mut args = model_fit("linear", "bernoulli", bad, "yb", &["--features", "x0,x2"]);
    args.extend(SMALL_HOST);
    fails_with(&args, "row 2700 (line 2701), column 'yb'");
    // eval reads chunk by chunk too: an unseen class deep in the table.
    let model = dir.join("m.json");
    let csv = csv.to_str().unwrap();
    ok_json(&model_fit(
        "linear",
        "categorical",
        csv,
        "label",
        &[
            "--features",
            "x0,x1,x2",
            "--save",
            model.to_str().unwrap(),
            "--json",
        ],
    ));
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2900] = lines[2900]
        .replace("ant", "yak")
        .replace("bee", "yak")
        .replace("cow", "yak");
    let unseen = dir.join("unseen.csv");
    std::fs::write(&unseen, lines.join("\n") + "\n").unwrap();
    fails_with(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            unseen.to_str().unwrap(),
        ],
        "row 2900 (line 2901), column 'label': class 'yak' was not seen in training",
    );
    // Predictions to a file: written whole or not at all.
    let out = dir.join("missing-dir").join("p.csv");
    fails_with(
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data",
            csv,
            "--output",
            out.to_str().unwrap(),
        ],
        "missing-dir",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_and_predict_read_chunk_by_chunk() {
    let dir = temp_dir("predict");
    let d = data(70_000, 6);
    let pq = dir.join("t.parquet");
    write_parquet(&pq, &d, 30_000);
    let (pq, model) = (pq.to_str().unwrap(), dir.join("m.json"));
    let fit = ok_json(&model_fit(
        "linear",
        "categorical",
        pq,
        "label",
        &[
            "--features",
            "x0,x1,x2",
            "--save",
            model.to_str().unwrap(),
            "--json",
        ],
    ));
    let model = model.to_str().unwrap();
    let eval = ok_json(&["eval", "--model", model, "--data", pq, "--json"]);
    assert_eq!(eval["n"], 70_000);
    assert!(rel(eval["nll"].as_f64().unwrap(), fit["nll"].as_f64().unwrap()) <= 1e-12);
    assert_eq!(eval["accuracy"], fit["accuracy"]);
    // A categorical model's deviance is twice its NLL (the saturated model's is 0).
    let deviance = eval["deviance"].as_f64().unwrap();
    assert!(rel(deviance, fit["deviance"].as_f64().unwrap()) <= 1e-12);
    assert!(rel(deviance, 2.0 * eval["nll"].as_f64().unwrap()) <= 1e-12);
    let out = dir.join("p.csv");
    let run = likely(&[
        "predict",
        "--model",
        model,
        "--data",
        pq,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("prob_ant,prob_bee,prob_cow"));
    let model = likely::model::Model::load(Path::new(model)).unwrap();
    let x: Vec<f64> = d.x.iter().flatten().copied().collect();
    let expected = model.predict(&x, d.x.len());
    let mut count = 0;
    for (line, want) in lines.zip(&expected) {
        let got: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(&got, want, "row {count}");
        count += 1;
    }
    assert_eq!(count, 70_000);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_model_fits_keep_resident_memory_bounded() {
    let dir = temp_dir("memory");
    let (small, big) = (dir.join("small.parquet"), dir.join("big.parquet"));
    write_parquet(&small, &data(10_000, 7), 10_000);
    // 2^21 rows of 3 features and a target: 64 MiB as f64 in memory.
    write_parquet(&big, &data(1 << 21, 8), 1 << 18);
    let fit = |path: &Path, extra: &[&str]| {
        let mut args = model_fit(
            "linear",
            "bernoulli",
            path.to_str().unwrap(),
            "yb",
            &[
                "--features",
                "x0,x1,x2",
                "--optimizer",
                "newton",
                "--backend",
                "cpu",
                "--json",
            ],
        );
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let budget = ["--stream", "--host-memory", "8MiB"];
    let baseline = fit(&small, &budget)["peak_rss_bytes"].as_u64();
    let streamed = fit(&big, &budget);
    assert_eq!(streamed["streamed"], true);
    assert_eq!(streamed["n"], 1 << 21);
    let in_memory = fit(&big, &[]);
    assert_eq!(in_memory["streamed"], false);
    assert!(
        rel(
            streamed["mean_nll"].as_f64().unwrap(),
            in_memory["mean_nll"].as_f64().unwrap()
        ) <= 1e-12
    );
    if let (Some(base), Some(peak), Some(resident)) = (
        baseline,
        streamed["peak_rss_bytes"].as_u64(),
        in_memory["peak_rss_bytes"].as_u64(),
    ) {
        // The measurement sees the table when it is held: the in-memory fit grows by more
        // than its 64 MiB; streaming it may add only the chunk buffers.
        assert!(
            resident.saturating_sub(base) > 64 << 20,
            "in memory: {resident} vs {base}"
        );
        let growth = peak.saturating_sub(base);
        assert!(
            growth < 24 << 20,
            "peak RSS grew by {growth} bytes streaming 64 MiB of data"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A Parquet table of `columns` double features f0.. and a 0/1 target y, in one row group.
fn write_wide_parquet(path: &Path, rows: usize, columns: usize) {
    let fields: String = (0..columns)
        .map(|c| format!("required double f{c}; "))
        .collect();
    let schema = parse_message_type(&format!("message t {{ {fields}required int64 y; }}")).unwrap();
    let props = Arc::new(WriterProperties::builder().build());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), props).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut rg = writer.next_row_group().unwrap();
    let mut index = 0;
    while let Some(mut col) = rg.next_column().unwrap() {
        if index < columns {
            let v: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
            col.typed::<DoubleType>()
                .write_batch(&v, None, None)
                .unwrap();
        } else {
            let v: Vec<i64> = (0..rows).map(|r| (r % 2) as i64).collect();
            col.typed::<Int64Type>()
                .write_batch(&v, None, None)
                .unwrap();
        }
        col.close().unwrap();
        index += 1;
    }
    rg.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn a_wide_parquet_table_opens_the_file_once() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("wide");
    let path = dir.join("wide.parquet");
    write_wide_parquet(&path, 500, 400);
    // 400 columns under a limit of 128 open files: one handle for the table, not one a column.
    for extra in [&[][..], &["--stream"]] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_likely"));
        command.args(model_fit(
            "linear",
            "gaussian",
            path.to_str().unwrap(),
            "y",
            &[
                "--backend",
                "cpu",
                "--optimizer",
                "lbfgs",
                "--max-iter",
                "3",
                "--json",
            ],
        ));
        command.args(extra);
        // SAFETY: setrlimit is async-signal-safe; the child only lowers its own limit.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 128,
                    rlim_max: 128,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = command.output().unwrap();
        // --max-iter 3 stops short of the optimum: exit status 3 (the fit's report printed).
        assert!(
            out.status.code() == Some(3),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fit: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(fit["features"].as_array().unwrap().len(), 400);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_minibatch_edges() {
    let dir = temp_dir("edges");
    // 2049 rows: chunks of 1024, 1024 and one row, that row held out under the seed chosen.
    let n = 2049;
    let d = data(n, 12);
    let pq = dir.join("t.parquet");
    write_parquet(&pq, &d, 1000);
    let seed = (0u64..)
        .find(|&s| likely::model::stream::held_out(s, n - 1, 0.5))
        .unwrap()
        .to_string();
    let train = |backend: &str, extra: &[&str]| {
        let mut args = model_fit(
            "mlp",
            "bernoulli",
            pq.to_str().unwrap(),
            "yb",
            &["--features", "x0,x1,x2", "--hidden", "4", "--epochs", "2"],
        );
        args.extend(["--backend", backend, "--seed", &seed, "--json"]);
        args.extend_from_slice(&SMALL_HOST);
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let mut backends = vec!["cpu"];
    if common::gpu().is_some() {
        backends.push("gpu");
    }
    for backend in backends {
        // A last chunk with no training row, and no rows carried into it (batches of one row).
        let fit = train(backend, &["--validation", "0.5", "--batch-size", "1"]);
        assert_eq!(fit["epochs"], 2, "{backend}");
        // --max-iter stops inside the first epoch on both engines alike.
        let fit = train(backend, &["--batch-size", "100", "--max-iter", "7"]);
        assert_eq!(fit["iterations"], 7, "{backend}");
        assert_eq!(fit["epochs"], 1, "{backend}");
        assert!(fit["reason"].as_str().unwrap().contains("--max-iter 7"));
    }
    // A batch larger than the table is the whole table, on the GPU too.
    if common::gpu().is_some() {
        let mut args = model_fit(
            "mlp",
            "bernoulli",
            pq.to_str().unwrap(),
            "yb",
            &[
                "--features",
                "x0,x1",
                "--batch-size",
                "10000000",
                "--epochs",
                "2",
            ],
        );
        args.extend(["--backend", "gpu", "--json"]);
        let fit = ok_json(&args);
        assert_eq!(fit["iterations"], 2);
        assert_eq!(fit["streamed"], false);
    }
    // Numeric class labels beyond 65536 classes are an error, not an allocation.
    let huge = dir.join("huge.csv");
    std::fs::write(&huge, "x,y\n0.5,0\n1.5,1\n-0.5,1e20\n").unwrap();
    for extra in [&[][..], &["--stream"]] {
        let mut args = model_fit("linear", "categorical", huge.to_str().unwrap(), "y", extra);
        args.extend(["--backend", "cpu"]);
        fails_with(&args, "row 3 (line 4), column 'y'");
    }
    // A huge real target is fine for a Gaussian, streamed or not.
    for extra in [&[][..], &["--stream"]] {
        let mut args = model_fit("linear", "gaussian", huge.to_str().unwrap(), "y", extra);
        args.extend(["--backend", "cpu", "--json"]);
        ok_json(&args);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_table_sorted_by_its_target_is_flagged_for_minibatch_epochs() {
    // Minibatch epochs over a chunked table shuffle within chunks only: a file sorted by its
    // target gives batches of one class at a time, which must not pass silently.
    use likely::data::{TableStream, TargetSpec};
    use likely::family::FamilyName;
    use likely::model::stream::{survey, ORDERED_TARGET_RATIO};
    let dir = temp_dir("ordered");
    let d = data(20_000, 13);
    let shuffled = dir.join("shuffled.csv");
    write_csv(&shuffled, &d);
    let mut order: Vec<usize> = (0..d.x.len()).collect();
    order.sort_by_key(|&i| d.yb[i]);
    let by_target = Data {
        x: order.iter().map(|&i| d.x[i]).collect(),
        yb: order.iter().map(|&i| d.yb[i]).collect(),
        yc: order.iter().map(|&i| d.yc[i]).collect(),
        yr: order.iter().map(|&i| d.yr[i]).collect(),
        label: order.iter().map(|&i| d.label[i].clone()).collect(),
    };
    let sorted = dir.join("sorted.csv");
    write_csv(&sorted, &by_target);

    // The survey's ratio: about 1 in random order, huge when sorted.
    let ratio = |path: &Path| {
        let spec = TargetSpec::Train {
            allow_labels: false,
        };
        let features = ["x0", "x1", "x2"].map(String::from);
        let mut table = TableStream::open(path, "yb", Some(&features), spec).unwrap();
        table.set_chunk_rows(1000);
        let found = survey(&mut table, FamilyName::Bernoulli, 1000).unwrap();
        found.target_order().unwrap()
    };
    let (random, ordered) = (ratio(&shuffled), ratio(&sorted));
    assert!(random < 3.0, "shuffled rows: F = {random}");
    assert!(
        ordered > 1000.0 * ORDERED_TARGET_RATIO,
        "sorted rows: F = {ordered}"
    );

    // The CLI warns where it matters: a streamed minibatch fit, not a full-batch one.
    let stderr = |path: &Path, optimizer: &str| {
        let mut args = model_fit(
            "linear",
            "bernoulli",
            path.to_str().unwrap(),
            "yb",
            &["--features", "x0,x1,x2", "--optimizer", optimizer, "--json"],
        );
        if optimizer == "adam" {
            args.extend(["--epochs", "1"]);
        }
        args.extend_from_slice(&SMALL_HOST);
        let out = likely(&args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(stderr(&sorted, "adam").contains("changes from chunk to chunk"));
    assert!(!stderr(&shuffled, "adam").contains("warning"));
    assert!(!stderr(&sorted, "lbfgs").contains("warning"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A CSV table larger than the size at which its body is parsed on all cores (8 MiB): the
/// same table as the Parquet file (fits bit for bit equal), the first bad cell at its row and
/// line, a quote late in the file read on in one pass with the same fit, and read and fit
/// times reported apart.
#[test]
fn a_large_csv_table_is_parsed_on_all_cores_like_one_reader() {
    let dir = temp_dir("parallel-csv");
    let d = data(120_000, 9);
    let (csv, pq) = (dir.join("t.csv"), dir.join("t.parquet"));
    write_csv(&csv, &d);
    write_parquet(&pq, &d, 50_000);
    assert!(std::fs::metadata(&csv).unwrap().len() > 9 << 20);
    let fit = |path: &Path, family: &str, target: &str, extra: &[&str]| {
        let mut args = model_fit("linear", family, path.to_str().unwrap(), target, extra);
        args.extend(["--features", "x0,x1,x2", "--backend", "cpu", "--json"]);
        ok_json(&args)
    };
    for (family, target) in [("bernoulli", "yb"), ("categorical", "label")] {
        let (from_csv, from_parquet) = (
            fit(&csv, family, target, &[]),
            fit(&pq, family, target, &[]),
        );
        assert_eq!(
            from_csv["coefficients"], from_parquet["coefficients"],
            "{family}"
        );
        assert_eq!(
            from_csv["std_errors"], from_parquet["std_errors"],
            "{family}"
        );
        assert_eq!(from_csv["n"], 120_000);
        assert!(from_csv["read_seconds"].as_f64().unwrap() > 0.0);
        assert!(from_csv["fit_seconds"].as_f64().unwrap() > 0.0);
        let streamed = fit(&csv, family, target, &SMALL_HOST);
        assert_eq!(streamed["streamed"], true);
        assert!(streamed["read_seconds"].is_null());
        assert!(streamed["fit_seconds"].as_f64().unwrap() > 0.0);
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Blank lines early on move the line numbers, not the rows; then bad cells deep in the file.
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited.insert(10, String::new());
    edited.insert(20, "\r".into());
    // Data row k (1-based) from the 20th on is now at index k + 2, file line k + 3.
    edited[110_000 + 2] = edited[110_000 + 2].replacen(',', ",oops", 1);
    edited[115_000 + 2] += ",9";
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, edited.join("\n") + "\n").unwrap();
    let args = model_fit(
        "linear",
        "bernoulli",
        bad.to_str().unwrap(),
        "yb",
        &["--features", "x0,x1,x2"],
    );
    fails_with(
        &args,
        "row 110000 (line 110003), column 'x1': non-numeric feature value 'oops",
    );
    // A quoted cell late in the file: the rest is read in one pass, to the same table.
    let mut quoted: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let last = quoted.len() - 1;
    quoted[last] = quoted[last]
        .replacen("ant", "\"ant\"", 1)
        .replacen("bee", "\"bee\"", 1)
        .replacen("cow", "\"cow\"", 1);
    let quoted_path = dir.join("quoted.csv");
    std::fs::write(&quoted_path, quoted.join("\n") + "\n").unwrap();
    let (plain, quoted) = (
        fit(&csv, "categorical", "label", &[]),
        fit(&quoted_path, "categorical", "label", &[]),
    );
    assert_eq!(plain["coefficients"], quoted["coefficients"]);
    std::fs::remove_dir_all(&dir).ok();
}
