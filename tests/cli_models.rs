//! `likely fit --model`, `eval` and `predict` through the command line.

mod common;

use common::cli::{fails_with, likely, model_fit, ok_json};

use std::path::PathBuf;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("likely-models-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn temp(name: &str, text: &str) -> String {
    let p = dir().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Three classes that depend on two features, with string labels.
fn classes_csv(n: usize, seed: u64) -> String {
    let mut s = String::from("x1,x2,kind\n");
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
    };
    for _ in 0..n {
        let (a, b) = (next(), next());
        let noise = next() * 0.3;
        let label = if a + noise > 0.5 {
            "high"
        } else if b + noise > 0.0 {
            "mid"
        } else {
            "low"
        };
        s += &format!("{a},{b},{label}\n");
    }
    s
}

#[test]
fn multinomial_coefficients_save_eval_predict() {
    let train = temp("train.csv", &classes_csv(600, 1));
    let model = dir().join("multi.json");
    let model = model.to_str().unwrap();
    let j = ok_json(&model_fit(
        "linear",
        "categorical",
        &train,
        "kind",
        &["--json", "--save", model],
    ));
    assert_eq!(j["model"], "linear");
    // Reference class "high" (first in sorted order): coefficients for "low" and "mid".
    let c = j["coefficients"].as_object().unwrap();
    assert_eq!(c.keys().cloned().collect::<Vec<_>>(), vec!["low", "mid"]);
    for class in c.values() {
        for key in ["x1", "x2", "intercept"] {
            assert!(class.get(key).is_some(), "{class}");
        }
    }
    let (nll, mean, acc) = (
        j["nll"].as_f64().unwrap(),
        j["mean_nll"].as_f64().unwrap(),
        j["accuracy"].as_f64().unwrap(),
    );
    assert!((nll / 600.0 - mean).abs() < 1e-12 && acc > 0.8, "{j}");
    // eval on the training data reproduces the training NLL.
    let e = ok_json(&["eval", "--model", model, "--data", &train, "--json"]);
    assert_eq!(e["n"], 600);
    assert!((e["nll"].as_f64().unwrap() - nll).abs() <= 1e-9 * nll);
    assert!((e["accuracy"].as_f64().unwrap() - acc).abs() < 1e-12);
    // predict: one probability column per class, rows summing to 1; the target may be absent.
    let features_only = temp("x.csv", "x2,x1\n0.1,1.5\n-1,-1\n");
    let out = likely(&["predict", "--model", model, "--data", &features_only]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "prob_high,prob_low,prob_mid");
    let first: Vec<f64> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        (first.iter().sum::<f64>() - 1.0).abs() < 1e-12 && first[0] > 0.5,
        "{first:?}"
    );
}

#[test]
fn mlp_seed_example_and_validation() {
    // 10 features -> 32 ReLU -> 5 classes, cross-entropy, AdamW with weight decay 0.01.
    let mut s = (0..10)
        .map(|j| format!("f{j}"))
        .collect::<Vec<_>>()
        .join(",")
        + ",y\n";
    let mut state = 7u64;
    for _ in 0..2000 {
        let x: Vec<f64> = (0..10)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        let scores = [
            x[0] + x[1],
            x[2] - x[3],
            x[4] * 2.0,
            -x[0] + x[5],
            x[6] - x[7] + x[8],
        ];
        let y = (0..5)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        s += &format!(
            "{},{y}\n",
            x.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let data = temp("mlp.csv", &s);
    let j = ok_json(&model_fit(
        "mlp",
        "categorical",
        &data,
        "y",
        &[
            "--hidden",
            "32",
            "--activation",
            "relu",
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.01",
            "--lr",
            "0.01",
            "--batch-size",
            "64",
            "--epochs",
            "15",
            "--validation",
            "0.1",
            "--seed",
            "3",
            "--json",
        ],
    ));
    assert!(j.get("coefficients").is_none(), "MLPs have no coefficients");
    assert!(j["accuracy"].as_f64().unwrap() > 0.6, "{j}");
    let history = j["history"].as_array().unwrap();
    assert!(history.iter().all(|h| h["validation_mean_nll"].is_number()));
    let first = history[0]["train_mean_nll"].as_f64().unwrap();
    let last = history.last().unwrap()["train_mean_nll"].as_f64().unwrap();
    assert!(last < first, "training reduces the loss: {first} -> {last}");
    // Same seed, same result.
    let again = ok_json(&model_fit(
        "mlp",
        "categorical",
        &data,
        "y",
        &[
            "--hidden",
            "32",
            "--activation",
            "relu",
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.01",
            "--lr",
            "0.01",
            "--batch-size",
            "64",
            "--epochs",
            "15",
            "--validation",
            "0.1",
            "--seed",
            "3",
            "--json",
        ],
    ));
    assert_eq!(j["nll"], again["nll"]);
}

#[test]
fn bad_model_inputs() {
    let train = temp("t.csv", "a,b,y\n1,2,0\n2,1,1\n3,0,1\n0,3,0\n");
    fails_with(
        &model_fit("linear", "bernoulli", &train, "z", &[]),
        "no target column named 'z'",
    );
    fails_with(
        &model_fit("linear", "bernoulli", &train, "y", &["--features", "a,q"]),
        "no feature column named 'q'",
    );
    let text = temp("text.csv", "a,b,y\n1,x,0\n");
    fails_with(
        &model_fit("linear", "bernoulli", &text, "y", &[]),
        "row 1 (line 2), column 'b': non-numeric feature value 'x'",
    );
    fails_with(
        &[
            "fit",
            "--model",
            "linear",
            "--family",
            "bernoulli",
            "--data",
            &train,
        ],
        "--model needs --target",
    );
    fails_with(
        &[
            "fit",
            "--family",
            "bernoulli",
            "--data",
            &train,
            "--target",
            "y",
        ],
        "--target applies to models",
    );
    let two = temp("two.csv", "a,b,y\n1,2,0\n2,1,2\n");
    fails_with(
        &model_fit("linear", "bernoulli", &two, "y", &[]),
        "row 2 (line 3), column 'y': value 2 is outside the support",
    );

    // --report ols is statsmodels' OLS summary of an unpenalised Gaussian linear model.
    let numbers = temp("numbers.csv", "a,y\n1,0.5\n2,1.5\n3,1.0\n4,2.5\n");
    for (family, extra, why) in [
        (
            "poisson",
            vec![],
            "--report ols applies to --model linear --family gaussian",
        ),
        ("gaussian", vec!["--prior", "l2:1"], "drop --prior"),
        ("gaussian", vec!["--cov", "robust"], "drop --cov"),
    ] {
        let mut args = vec!["--report", "ols"];
        args.extend(extra);
        fails_with(&model_fit("linear", family, &numbers, "y", &args), why);
    }

    // --fix holds a head's global: the right name, a positive value, a head that has one.
    let counts = temp("counts.csv", "a,y\n1,0\n2,3\n3,1\n4,7\n");
    for (family, fix, why) in [
        ("poisson", "alpha=1", "a poisson model has none it can hold"),
        (
            "gaussian",
            "sigma=1",
            "a gaussian model has none it can hold",
        ),
        (
            "negative-binomial",
            "shape=1",
            "a negative-binomial head's global parameter is alpha",
        ),
        (
            "student-t",
            "sigma=1",
            "of a student-t head's global parameters (sigma, df) --fix holds df",
        ),
        ("student-t", "df=0", "the value must be a positive number"),
        (
            "negative-binomial",
            "alpha=-1",
            "the value must be a positive number",
        ),
        (
            "negative-binomial",
            "alpha=nan",
            "the value must be a positive number",
        ),
        (
            "negative-binomial",
            "alpha=5e-324",
            "the value must be a positive number",
        ),
        (
            "negative-binomial",
            "=",
            "--fix '': a negative-binomial head's global parameter is alpha",
        ),
        (
            "negative-binomial",
            "alpha",
            "--fix takes NAME=VALUE (e.g. alpha=0.5)",
        ),
    ] {
        fails_with(
            &model_fit("linear", family, &counts, "y", &["--fix", fix]),
            why,
        );
    }
    // A family fit holds its own parameters: a Poisson's is lambda.
    fails_with(
        &[
            "fit", "--family", "poisson", "--data", &counts, "--column", "y", "--fix", "alpha=1",
        ],
        "--fix 'alpha': the poisson family's parameters are lambda",
    );

    // --link: one the family takes, on a model, at the CPU engine where it is not native.
    for (family, link, why) in [
        (
            "poisson",
            "probit",
            "--link probit: the poisson family takes the links log, identity (default log), not probit",
        ),
        (
            "negative-binomial",
            "identity",
            "the negative-binomial family takes the link log (default log), not identity",
        ),
        (
            "categorical",
            "probit",
            "the categorical family takes the link logit",
        ),
    ] {
        fails_with(
            &model_fit("linear", family, &counts, "y", &["--link", link]),
            why,
        );
    }
    fails_with(
        &[
            "fit", "--family", "poisson", "--data", &counts, "--column", "y", "--link", "log",
        ],
        "--link applies to models: add --model linear or --model mlp",
    );
    fails_with(
        &model_fit("linear", "gaussian", &numbers, "y", &["--report", "ols", "--link", "log"]),
        "--report ols is of the least-squares fit, a gaussian model at its identity link: drop --link",
    );
    fails_with(
        &model_fit(
            "linear",
            "poisson",
            &counts,
            "y",
            &["--link", "identity", "--backend", "gpu"],
        ),
        "--link identity runs on the CPU engine (--backend cpu)",
    );
    fails_with(
        &model_fit("linear", "poisson", &counts, "y", &["--link", "sqrt"]),
        "invalid value 'sqrt' for '--link <LINK>'",
    );

    let shares = temp("shares.csv", "a,y\n1,0.5\n2,1.5\n");
    fails_with(
        &model_fit("linear", "beta", &shares, "y", &[]),
        "row 2 (line 3), column 'y': value 1.5 is outside the support (0 < x < 1)",
    );

    let labels = temp("labels.csv", "a,y\n1,cat\n2,dog\n3,cat\n0,dog\n");
    let model = dir().join("labels.json");
    let model = model.to_str().unwrap();
    ok_json(&model_fit(
        "linear",
        "categorical",
        &labels,
        "y",
        &["--json", "--save", model],
    ));
    let unseen = temp("unseen.csv", "a,y\n1,cat\n2,eel\n");
    fails_with(
        &["eval", "--model", model, "--data", &unseen],
        "row 2 (line 3), column 'y': class 'eel' was not seen in training",
    );
    let wrong = temp("wrong.csv", "b,y\n1,cat\n");
    fails_with(
        &["eval", "--model", model, "--data", &wrong],
        "no feature column named 'a'",
    );
    let corrupt = temp(
        "corrupt.json",
        "{\"format\": \"likely-model\", \"model\": \"linear\"",
    );
    fails_with(
        &["eval", "--model", &corrupt, "--data", &labels],
        "not a valid likely model file",
    );
    let text = std::fs::read_to_string(model)
        .unwrap()
        .replace("\"params\": [", "\"params\": [1.0, ");
    let extra = temp("extra.json", &text);
    fails_with(
        &["predict", "--model", &extra, "--data", &labels],
        "parameters, the architecture needs",
    );
    fails_with(
        &[
            "eval",
            "--model",
            "/nonexistent/model.json",
            "--data",
            &labels,
        ],
        "/nonexistent/model.json",
    );
}

#[test]
fn newton_and_gpu_models_through_the_cli() {
    let train = temp("gpu.csv", &classes_csv(400, 5));
    let newton = ok_json(&model_fit(
        "linear",
        "categorical",
        &train,
        "kind",
        &["--optimizer", "newton", "--backend", "cpu", "--json"],
    ));
    let lbfgs = ok_json(&model_fit(
        "linear",
        "categorical",
        &train,
        "kind",
        &["--backend", "cpu", "--json"],
    ));
    assert!(newton["iterations"].as_u64().unwrap() <= 15, "{newton}");
    let (a, b) = (
        newton["nll"].as_f64().unwrap(),
        lbfgs["nll"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-8 * b, "newton {a} vs lbfgs {b}");
    fails_with(
        &model_fit(
            "mlp",
            "categorical",
            &train,
            "kind",
            &["--optimizer", "newton", "--backend", "cpu"],
        ),
        "applies to linear models",
    );
    // Newton on a Laplace head is the exact LAD solve (its NLL has no second derivative):
    // the line through (1, 2) and (4, 5.5) leaves residuals 1/3 and -1/3, a sum of 2/3 that no
    // other pair's line beats, so b = 1/6.
    let lad_data = temp("lap.csv", "a,y\n1,2\n2,3.5\n3,4\n4,5.5\n");
    let lad = ok_json(&model_fit(
        "linear",
        "laplace",
        &lad_data,
        "y",
        &["--optimizer", "newton", "--json"],
    ));
    assert_eq!(lad["method"], "lad-simplex", "{lad}");
    assert_eq!(lad["converged"], true, "{lad}");
    let lad_b = lad["b"].as_f64().unwrap();
    assert!((lad_b - 1.0 / 6.0).abs() < 1e-12, "{lad}");
    if likely::gpu::list_adapters().is_empty() {
        assert_ne!(
            std::env::var("LIKELY_REQUIRE_GPU").as_deref(),
            Ok("1"),
            "CI requires an adapter"
        );
        eprintln!("!!!!!!!! SKIPPING GPU MODEL CLI TEST: no GPU adapter !!!!!!!!");
        return;
    }
    let gpu = ok_json(&model_fit(
        "linear",
        "categorical",
        &train,
        "kind",
        &["--backend", "gpu", "--json"],
    ));
    assert_eq!(gpu["engine"], "gpu");
    let g = gpu["nll"].as_f64().unwrap();
    assert!((g - b).abs() <= 1e-5 * b, "gpu {g} vs cpu {b}");
    let mlp = ok_json(&model_fit(
        "mlp",
        "categorical",
        &train,
        "kind",
        &["--backend", "gpu", "--epochs", "3", "--json"],
    ));
    assert_eq!(mlp["engine"], "gpu");
    assert_eq!(mlp["history"].as_array().unwrap().len(), 3);
}

/// Flags that another optimiser, model or fit kind would use are errors, not ignored; and
/// --gpu-memory bounds a model's GPU buffers.
#[test]
fn misplaced_and_memory_flags_on_model_fits() {
    let table = temp(
        "flags.csv",
        "y,a\n0,0.5\n1,1.5\n0,-0.5\n1,2.0\n0,0.1\n1,0.9\n1,0.2\n0,1.2\n",
    );
    let base = [
        "fit",
        "--model",
        "linear",
        "--family",
        "bernoulli",
        "--data",
        &table,
        "--target",
        "y",
    ];
    let with = |extra: &[&'static str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args
    };
    if common::gpu().is_some() {
        fails_with(
            &with(&["--backend", "gpu", "--gpu-memory", "1KiB"]),
            "--gpu-memory allows",
        );
        let fit = ok_json(&with(&[
            "--backend",
            "gpu",
            "--gpu-memory",
            "64MiB",
            "--json",
        ]));
        assert_eq!(fit["engine"], "gpu");
    }
    for (extra, needle) in [
        (&["--host-memory", "1GiB!"][..], "invalid size"),
        (&["--column", "a"], "apply to family fits"),
        (&["--classes", "2"], "apply to family fits"),
        (
            &["--optimizer", "adam", "--weight-decay", "0.1"],
            "--weight-decay applies",
        ),
        (
            &["--optimizer", "adam", "--momentum", "0.5"],
            "--momentum applies",
        ),
        (&["--epochs", "3"], "full-batch"),
        (
            &["--optimizer", "newton", "--batch-size", "8"],
            "full-batch",
        ),
        (
            &["--activation", "tanh"],
            "--activation applies to --model mlp",
        ),
    ] {
        fails_with(&with(extra), needle);
    }
    fails_with(
        &[
            "fit", "--family", "gaussian", "--data", &table, "--column", "a", "--epochs", "3",
        ],
        "--epochs applies to models",
    );
    // Where they belong they are accepted.
    let sgd = ok_json(&with(&[
        "--optimizer",
        "sgd",
        "--momentum",
        "0.5",
        "--epochs",
        "2",
        "--json",
    ]));
    assert!(sgd["nll"].as_f64().unwrap() > 0.0);
}

/// A model fitted with `--link` is saved with it and applied with it: `predict` reports the
/// identity link's mean eta itself (not e^eta); a file whose link the family does not take is
/// refused, and a file written before links existed (no "link") is read at the native link.
#[test]
fn a_model_saved_with_a_link_is_applied_with_it() {
    let counts = temp(
        "link-counts.csv",
        "a,y\n1,2\n2,3\n3,5\n4,4\n5,7\n6,9\n7,8\n8,12\n",
    );
    let saved = dir().join("identity.json");
    let saved = saved.to_str().unwrap();
    let fit = ok_json(&model_fit(
        "linear",
        "poisson",
        &counts,
        "y",
        &["--link", "identity", "--save", saved, "--json"],
    ));
    assert_eq!(fit["link"], "identity");
    assert_eq!(fit["converged"], true, "{fit}");
    let (slope, intercept) = (
        fit["coefficients"]["a"].as_f64().unwrap(),
        fit["coefficients"]["intercept"].as_f64().unwrap(),
    );
    let predict = |model: &str, output: &str| -> Vec<f64> {
        let out = likely(&[
            "predict", "--model", model, "--data", &counts, "--output", output,
        ]);
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(output).unwrap();
        text.lines().skip(1).map(|l| l.parse().unwrap()).collect()
    };
    let output = dir().join("identity-means.csv");
    let means = predict(saved, output.to_str().unwrap());
    for (i, m) in means.iter().enumerate() {
        let want = intercept + slope * (i + 1) as f64;
        assert!((m - want).abs() <= 1e-12 * want, "row {i}: {m} vs {want}");
    }
    let text = std::fs::read_to_string(saved).unwrap();
    assert!(text.contains("\"link\": \"identity\""), "{text}");
    let tampered = dir().join("probit.json");
    std::fs::write(
        &tampered,
        text.replace("\"link\": \"identity\"", "\"link\": \"probit\""),
    )
    .unwrap();
    fails_with(
        &[
            "predict",
            "--model",
            tampered.to_str().unwrap(),
            "--data",
            &counts,
        ],
        "not a valid likely model file: the poisson family takes the links log, identity",
    );
    let old = dir().join("old.json");
    std::fs::write(&old, text.replace("\"link\": \"identity\",", "")).unwrap();
    let output = dir().join("old-means.csv");
    let means = predict(old.to_str().unwrap(), output.to_str().unwrap());
    let want = (intercept + slope).exp();
    assert!(
        (means[0] - want).abs() <= 1e-12 * want,
        "{} vs {want}",
        means[0]
    );
}

/// `--offset` and `--exposure`: their mistakes, a non-positive exposure named by row and
/// column, an offset column missing where a saved model is applied, and a Gaussian model with
/// an offset equal to the model of the target less the offset (Newton with the offset's
/// coefficient held at 1 against the exact least-squares solve).
#[test]
fn offsets_and_exposures_through_the_cli() {
    let rates = temp(
        "rates.csv",
        "a,e,y\n1,2,3\n2,1.5,5\n3,1,4\n4,2,8\n5,3,9\n6,1,7\n",
    );
    for (extra, why) in [
        (
            vec!["--offset", "e", "--exposure", "e"],
            "--offset and --exposure both give the offset",
        ),
        (
            vec!["--offset", "y"],
            "--offset y: the offset column is the target",
        ),
        (
            vec!["--exposure", "e", "--features", "a,e"],
            "the offset column is also in --features",
        ),
        (vec!["--offset", "nope"], "no feature column named 'nope'"),
    ] {
        fails_with(&model_fit("linear", "poisson", &rates, "y", &extra), why);
    }
    fails_with(
        &model_fit("mlp", "poisson", &rates, "y", &["--offset", "e"]),
        "--offset e applies to --model linear",
    );
    fails_with(
        &model_fit("linear", "laplace", &rates, "y", &["--offset", "e"]),
        "a laplace model's least-absolute-deviations solve has no offset",
    );
    fails_with(
        &[
            "fit",
            "--family",
            "poisson",
            "--data",
            &rates,
            "--column",
            "y",
            "--exposure",
            "e",
        ],
        "--exposure applies to models",
    );
    let zero = temp("zero-exposure.csv", "a,e,y\n1,2,3\n2,0,5\n3,1,4\n");
    fails_with(
        &model_fit("linear", "poisson", &zero, "y", &["--exposure", "e"]),
        "row 2 (line 3), column 'e': exposure 0 is not positive",
    );

    // A saved rate model needs its exposure column, and reads it as a logarithm again.
    let saved = dir().join("rate.json");
    let saved = saved.to_str().unwrap();
    let fit = ok_json(&model_fit(
        "linear",
        "poisson",
        &rates,
        "y",
        &["--exposure", "e", "--save", saved, "--json"],
    ));
    assert_eq!(fit["exposure"], "e");
    assert_eq!(fit["features"], serde_json::json!(["a"]));
    assert!(fit["coefficients"].get("e").is_none(), "{fit}");
    assert!(fit["llnull"].is_null(), "{fit}");
    let bare = temp("no-exposure.csv", "a,y\n1,3\n2,5\n");
    fails_with(
        &["predict", "--model", saved, "--data", &bare],
        "no exposure column named 'e': the model was fitted with --exposure e",
    );
    fails_with(
        &["eval", "--model", saved, "--data", &zero],
        "row 2 (line 3), column 'e': exposure 0 is not positive",
    );

    // Gaussian: y ~ a with offset e is (y - e) ~ a.
    let shifted = temp("shifted.csv", "a,z\n1,1\n2,3.5\n3,3\n4,6\n5,6\n6,6\n");
    let with_offset = ok_json(&model_fit(
        "linear",
        "gaussian",
        &rates,
        "y",
        &["--offset", "e", "--json"],
    ));
    let plain = ok_json(&model_fit("linear", "gaussian", &shifted, "z", &["--json"]));
    assert_eq!(with_offset["method"], "newton");
    assert_eq!(plain["method"], "qr");
    for key in ["a", "intercept"] {
        let (u, v) = (
            with_offset["coefficients"][key].as_f64().unwrap(),
            plain["coefficients"][key].as_f64().unwrap(),
        );
        assert!(
            (u - v).abs() <= 1e-9 * v.abs().max(1.0),
            "{key}: {u} vs {v}"
        );
        let (u, v) = (
            with_offset["std_errors"][key].as_f64().unwrap(),
            plain["std_errors"][key].as_f64().unwrap(),
        );
        assert!((u - v).abs() <= 1e-7 * v, "se {key}: {u} vs {v}");
    }
    let (u, v) = (
        with_offset["nll"].as_f64().unwrap(),
        plain["nll"].as_f64().unwrap(),
    );
    assert!((u - v).abs() <= 1e-12 * v.abs(), "{u} vs {v}");
}
