//! Parquet input: numeric and string columns, several row groups, compression, nulls;
//! streamed reads; family fits and model fits from Parquet equal those from the same data as
//! CSV.

mod common;

use common::cli::{fails_with, model_fit, ok_json};
use likely::data::{self, Cells, ParquetColumn};
use likely::family::FamilyName;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The columns written: x (double), f (float), k (int64), flag (boolean), label (string) and
/// maybe (optional double, null in row `null_row` if any).
struct Columns {
    x: Vec<f64>,
    f: Vec<f32>,
    k: Vec<i64>,
    flag: Vec<bool>,
    label: Vec<String>,
}

fn columns(n: usize, seed: u64) -> Columns {
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n).map(|_| 3.0 + 2.0 * rng.random::<f64>()).collect();
    let f: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
    let k: Vec<i64> = (0..n).map(|_| rng.random_range(0..20)).collect();
    // flag depends on x and f, so that a logistic fit has something to find.
    let flag: Vec<bool> = (0..n)
        .map(|i| {
            let z = 1.5 * (x[i] - 4.0) - 2.0 * f[i] as f64;
            rng.random::<f64>() < 1.0 / (1.0 + (-z).exp())
        })
        .collect();
    let label: Vec<String> = (0..n)
        .map(|_| ["cat", "dog", "emu"][rng.random_range(0..3)].to_string())
        .collect();
    Columns {
        x,
        f,
        k,
        flag,
        label,
    }
}

/// Writes `c` in row groups of `group` rows, snappy-compressed.
fn write_parquet(path: &Path, c: &Columns, group: usize, null_row: Option<usize>) {
    let schema = parse_message_type(
        "message t { required double x; required float f; required int64 k; \
         required boolean flag; required binary label (UTF8); optional double maybe; }",
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
    let n = c.x.len();
    for start in (0..n).step_by(group) {
        let rows = start..n.min(start + group);
        let mut rg = writer.next_row_group().unwrap();
        let mut index = 0;
        while let Some(mut col) = rg.next_column().unwrap() {
            match index {
                0 => col
                    .typed::<DoubleType>()
                    .write_batch(&c.x[rows.clone()], None, None),
                1 => col
                    .typed::<FloatType>()
                    .write_batch(&c.f[rows.clone()], None, None),
                2 => col
                    .typed::<Int64Type>()
                    .write_batch(&c.k[rows.clone()], None, None),
                3 => col
                    .typed::<BoolType>()
                    .write_batch(&c.flag[rows.clone()], None, None),
                4 => {
                    let values: Vec<ByteArray> = c.label[rows.clone()]
                        .iter()
                        .map(|s| ByteArray::from(s.as_str()))
                        .collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, None, None)
                }
                _ => {
                    let defs: Vec<i16> =
                        rows.clone().map(|r| (Some(r) != null_row) as i16).collect();
                    let values: Vec<f64> = rows
                        .clone()
                        .filter(|&r| Some(r) != null_row)
                        .map(|r| c.x[r])
                        .collect();
                    col.typed::<DoubleType>()
                        .write_batch(&values, Some(&defs), None)
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

/// The same columns as CSV, numbers printed so that they parse back exactly.
fn write_csv(path: &Path, c: &Columns) {
    let mut text = String::from("x,f,k,flag,label\n");
    for i in 0..c.x.len() {
        text += &format!(
            "{:?},{:?},{},{},{}\n",
            c.x[i], c.f[i] as f64, c.k[i], c.flag[i] as u8, c.label[i]
        );
    }
    std::fs::write(path, text).unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("likely-parquet-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn columns_of_every_type_load_across_row_groups() {
    let dir = temp_dir("load");
    let path = dir.join("t.parquet");
    let c = columns(2500, 1);
    write_parquet(&path, &c, 1000, None);

    let x = data::load(&path, Some("x"), FamilyName::Gaussian).unwrap();
    assert_eq!(x.values.iter().collect::<Vec<f64>>(), c.x);
    assert_eq!(x.column, "x");
    let f = data::load(&path, Some("f"), FamilyName::Gaussian).unwrap();
    assert_eq!(
        f.values.iter().collect::<Vec<f64>>(),
        c.f.iter().map(|&b| b as f64).collect::<Vec<f64>>()
    );
    // A FLOAT column is held at 4 bytes a sample.
    assert_eq!(f.values.width(), 4);
    let k = data::load(&path, Some("k"), FamilyName::Poisson).unwrap();
    assert_eq!(
        k.values.iter().collect::<Vec<f64>>(),
        c.k.iter().map(|&b| b as f64).collect::<Vec<f64>>()
    );
    let flag = data::load(&path, Some("flag"), FamilyName::Bernoulli).unwrap();
    assert_eq!(
        flag.values.iter().collect::<Vec<f64>>(),
        c.flag.iter().map(|&b| b as u8 as f64).collect::<Vec<f64>>()
    );
    let maybe = data::load(&path, Some("maybe"), FamilyName::Gaussian).unwrap();
    assert_eq!(maybe.values.iter().collect::<Vec<f64>>(), c.x);

    // String labels: classes in sorted order, for the categorical family only.
    let label = data::load(&path, Some("label"), FamilyName::Categorical).unwrap();
    assert_eq!(label.labels.as_deref().unwrap(), ["cat", "dog", "emu"]);
    assert_eq!(label.values.len(), c.label.len());
    for (v, s) in label.values.iter().zip(&c.label) {
        assert_eq!(label.labels.as_ref().unwrap()[v as usize], *s);
    }
    let err = data::load(&path, Some("label"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("non-numeric") && err.contains("label"),
        "{err}"
    );
    let err = data::load(&path, Some("nope"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no column named 'nope'") && err.contains("x, f, k"),
        "{err}"
    );
    let err = data::load(&path, None, FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--column"), "{err}");
    // Support errors name the row and the column.
    let err = data::load(&path, Some("f"), FamilyName::Exponential)
        .and_then(|d| d.check_support(FamilyName::Exponential.build(1).as_ref()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("column 'f'") && err.contains("row "), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn broken_empty_and_nested_files_are_clear_errors() {
    let dir = temp_dir("broken");
    let broken = dir.join("broken.parquet");
    std::fs::write(&broken, b"PAR1 not really").unwrap();
    let err = data::load(&broken, Some("x"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a readable Parquet file"), "{err}");
    // Found by its magic bytes whatever its name.
    let renamed = dir.join("table.dat");
    write_parquet(&renamed, &columns(10, 5), 10, None);
    assert_eq!(
        data::load(&renamed, Some("x"), FamilyName::Gaussian)
            .unwrap()
            .values
            .len(),
        10
    );
    let empty = dir.join("empty.parquet");
    write_parquet(&empty, &columns(0, 5), 10, None);
    let err = data::load(&empty, Some("x"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no data rows"), "{err}");
    let nested = dir.join("nested.parquet");
    let schema = parse_message_type(
        "message t { required group xs (LIST) { repeated group list { required double element; } } }",
    )
    .unwrap();
    let file = std::fs::File::create(&nested).unwrap();
    let writer = SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(WriterProperties::default()),
    )
    .unwrap();
    writer.close().unwrap();
    let err = data::load(&nested, Some("xs"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_null_is_an_error_naming_its_row() {
    let dir = temp_dir("null");
    let path = dir.join("t.parquet");
    write_parquet(&path, &columns(300, 2), 100, Some(157));
    let err = data::load(&path, Some("maybe"), FamilyName::Gaussian)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("row 158, column 'maybe'") && err.contains("null"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn streamed_reads_cross_row_groups_and_restart() {
    let dir = temp_dir("stream");
    let path = dir.join("t.parquet");
    let c = columns(5000, 3);
    write_parquet(&path, &c, 1024, None);
    let mut column = ParquetColumn::open(&path, Some("x")).unwrap();
    assert_eq!(column.len(), 5000);
    for chunk in [1, 700, 1024, 1025, 5000] {
        let mut seen = Vec::new();
        let mut buffer = vec![0.0; chunk];
        for start in (0..5000).step_by(chunk) {
            let len = chunk.min(5000 - start);
            column.read(start, &mut buffer[..len]).unwrap();
            seen.extend_from_slice(&buffer[..len]);
        }
        assert_eq!(seen, c.x, "chunks of {chunk}");
    }
    // A read that skips ahead, then one behind the cursor.
    let mut one = [0.0];
    column.read(0, &mut one).unwrap();
    column.read(4321, &mut one).unwrap();
    assert_eq!(one[0], c.x[4321]);
    column.read(17, &mut one).unwrap();
    assert_eq!(one[0], c.x[17]);
    assert!(column.read(4999, &mut [0.0, 0.0]).is_err());
    match ParquetColumn::open(&path, Some("label"))
        .unwrap()
        .read_all()
        .unwrap()
    {
        Cells::Text(t) => assert_eq!(t, c.label),
        Cells::Numbers(_) => panic!("label is a string column"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fits_from_parquet_equal_fits_from_the_same_csv() {
    let dir = temp_dir("cli");
    let (pq, csv) = (dir.join("t.parquet"), dir.join("t.csv"));
    let c = columns(10_000, 4);
    write_parquet(&pq, &c, 1000, None);
    write_csv(&csv, &c);
    let (pq, csv) = (pq.to_str().unwrap(), csv.to_str().unwrap());

    let family_fit = |path: &str, extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--family",
            "gaussian",
            "--data",
            path,
            "--column",
            "x",
            "--backend",
            "cpu",
            "--json",
        ];
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let from_csv = family_fit(csv, &[]);
    let from_parquet = family_fit(pq, &[]);
    // 64 KiB gives 8192-sample chunks: two chunks, each spanning several row groups.
    let streamed = family_fit(pq, &["--stream", "--host-memory", "64KiB"]);
    assert_eq!(streamed["streamed"], true);
    for p in ["mu", "sigma"] {
        let a = from_csv["params"][p].as_f64().unwrap();
        assert_eq!(from_parquet["params"][p].as_f64().unwrap(), a, "{p}");
        // Streamed: the same values summed in other blocks.
        let s = streamed["params"][p].as_f64().unwrap();
        assert!((s - a).abs() <= 1e-12 * a.abs(), "{p}: streamed {s} vs {a}");
    }

    // Streamed through the GPU's two device buffers: the same fit to f32 reduction accuracy.
    if let Some(_ctx) = common::gpu() {
        let gpu = ok_json(&[
            "fit",
            "--family",
            "gaussian",
            "--data",
            pq,
            "--column",
            "x",
            "--backend",
            "gpu",
            "--json",
            "--stream",
            "--host-memory",
            "64KiB",
            "--gpu-memory",
            "16KiB",
        ]);
        assert_eq!(gpu["streamed"], true);
        for p in ["mu", "sigma"] {
            let (a, g) = (
                from_csv["params"][p].as_f64().unwrap(),
                gpu["params"][p].as_f64().unwrap(),
            );
            assert!(
                (g - a).abs() <= 1e-6 * a.abs(),
                "{p}: GPU streamed {g} vs {a}"
            );
        }
    }

    // A logistic regression of flag on x and f, from a Parquet table and from the CSV.
    let logistic_fit = |path: &str| {
        ok_json(&model_fit(
            "linear",
            "bernoulli",
            path,
            "flag",
            &["--features", "x,f", "--backend", "cpu", "--json"],
        ))
    };
    let (a, b) = (logistic_fit(csv), logistic_fit(pq));
    let (a, b) = (
        a["coefficients"].as_object().unwrap(),
        b["coefficients"].as_object().unwrap(),
    );
    assert_eq!(a.len(), 3);
    for (name, value) in a {
        let (x, y) = (value.as_f64().unwrap(), b[name].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{name}: {x} vs {y}"
        );
    }

    // A string target is a categorical model's labels; string features are refused.
    let j = ok_json(&model_fit(
        "linear",
        "categorical",
        pq,
        "label",
        &["--features", "x,k", "--backend", "cpu", "--json"],
    ));
    assert_eq!(j["model"], "linear");
    fails_with(
        &model_fit(
            "linear",
            "bernoulli",
            pq,
            "flag",
            &["--features", "x,label"],
        ),
        "non-numeric feature value",
    );
    fails_with(
        &[
            "fit",
            "--family",
            "categorical",
            "--data",
            pq,
            "--column",
            "label",
            "--stream",
        ],
        "--stream reads numeric columns",
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// One required int64 column `v`, annotated as `annotation`, holding `values`.
fn write_int64(path: &Path, annotation: &str, values: &[i64]) {
    let schema =
        parse_message_type(&format!("message t {{ required int64 v {annotation}; }}")).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(WriterProperties::default()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = group.next_column().unwrap().unwrap();
    column
        .typed::<Int64Type>()
        .write_batch(values, None, None)
        .unwrap();
    column.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn unsigned_integers_read_as_unsigned_and_units_are_refused() {
    let dir = temp_dir("annotated");
    // 2^63 + 1 and 2^64 - 1 stored in int64's bits: negative if read as signed.
    let big = [(1u64 << 63) + 1, u64::MAX, 3].map(|v| v as i64);
    let path = dir.join("u64.parquet");
    write_int64(&path, "(INTEGER(64,false))", &big);
    let Cells::Numbers(values) = ParquetColumn::open(&path, Some("v"))
        .unwrap()
        .read_all()
        .unwrap()
    else {
        panic!("numbers expected");
    };
    assert_eq!(values, vec![(1u64 << 63) as f64, u64::MAX as f64, 3.0]);
    // Milliseconds also carry the old converted type; nanoseconds (pandas' datetime64[ns])
    // only the logical type.
    for unit in ["MILLIS", "NANOS"] {
        let stamps = dir.join(format!("timestamps-{unit}.parquet"));
        write_int64(
            &stamps,
            &format!("(TIMESTAMP({unit},true))"),
            &[1_700_000_000_000, 1_700_000_001_000],
        );
        let err = data::load(&stamps, Some("v"), FamilyName::Gaussian)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Timestamp") && err.contains("cast"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
