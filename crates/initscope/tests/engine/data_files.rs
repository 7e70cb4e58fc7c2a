//! Real data in, bad data out: every loader refuses broken files with one message naming the
//! file, the position and the problem; exports load back to the same arrays.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use initscope::data::{csv, export_npz, idx, npy, DataOptions, DataSpec, Features, Labels, Task};
use initscope::Matrix;
use proptest::prelude::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("initscope-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx_bytes(dtype: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, dtype, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn load(spec: &str) -> Result<initscope::Dataset<'static>, String> {
    DataSpec::parse("--data", spec)
        .and_then(|s| s.load(&DataOptions::default(), None))
        .map_err(|e| e.to_string())
}

fn assert_err(result: Result<impl std::fmt::Debug, String>, path: &Path, needles: &[&str]) {
    let e = result.expect_err("a broken file must be refused");
    assert!(
        e.contains(&path.display().to_string()),
        "error does not name the file: {e}"
    );
    assert!(!e.contains('\n'), "not one line: {e}");
    for n in needles {
        assert!(e.contains(n), "'{n}' missing from: {e}");
    }
}

#[test]
fn idx_pairs_load_gzipped_or_not_and_scale_pixels() {
    let d = dir("idx-ok");
    let images = idx_bytes(
        0x08,
        &[5, 2, 2],
        &(0..20).map(|i| (i * 12) as u8).collect::<Vec<_>>(),
    );
    let labels = idx_bytes(0x08, &[5], &[0, 1, 2, 1, 0]);
    let ip = write(&d, "img.gz", &gz(&images));
    let lp = write(&d, "lbl", &labels);
    let ds = load(&format!("idx:{},{}", ip.display(), lp.display())).unwrap();
    assert_eq!(ds.task, Task::Classification { classes: 3 });
    assert_eq!(ds.train.len() + ds.test.len(), 5);
    assert_eq!(ds.input_dim(), 4);
    let all = [&ds.train, &ds.test];
    assert!(all.iter().all(|s| matches!(s.x, Features::F32(_))));
    let max = all
        .iter()
        .flat_map(|s| s.x.column_stats())
        .map(|c| c.1)
        .fold(0.0, f64::max);
    assert!(
        (max - 228.0 / 255.0).abs() < 1e-6,
        "pixels scaled to [0, 1]: {max}"
    );
}

#[test]
fn broken_idx_files_are_refused_with_position() {
    let d = dir("idx-bad");
    let good_labels = write(&d, "lbl", &idx_bytes(0x08, &[2], &[0, 1]));
    let good_images = idx_bytes(0x08, &[2, 2], &[1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "truncated.gz",
            gz(&good_images)[..20].to_vec(),
            vec!["gzip"],
        ),
        (
            "magic",
            vec![1, 2, 8, 1, 0, 0, 0, 1, 0],
            vec!["byte 0", "bad magic"],
        ),
        (
            "dtype",
            idx_bytes(0x07, &[2, 2], &[1, 2, 3, 4]),
            vec!["byte 2", "unknown IDX dtype 0x07"],
        ),
        (
            "overflow",
            idx_bytes(0x0E, &[u32::MAX, u32::MAX, 16], &[]),
            vec!["overflow"],
        ),
        (
            "short",
            idx_bytes(0x08, &[2, 2], &[1, 2, 3]),
            vec!["truncated", "4 data bytes", "only 3 follow the header"],
        ),
        (
            "trailing",
            idx_bytes(0x08, &[2, 2], &[1, 2, 3, 4, 5]),
            vec!["trailing data"],
        ),
        ("empty", vec![], vec!["empty file"]),
        ("header", vec![0, 0, 8], vec!["byte 0", "magic"]),
        (
            "nan",
            idx_bytes(0x0D, &[2, 1], &[0x7f, 0xc0, 0, 0, 0x3f, 0x80, 0, 0]),
            vec!["element 0", "not finite"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let p = write(&d, name, &bytes);
        assert_err(
            load(&format!("idx:{},{}", p.display(), good_labels.display())),
            &p,
            &needles,
        );
    }
    // Count mismatch names both files.
    let p = write(&d, "three", &idx_bytes(0x08, &[3, 1], &[1, 2, 3]));
    assert_err(
        load(&format!("idx:{},{}", p.display(), good_labels.display())),
        &p,
        &["3 images but 2 labels", "lbl"],
    );
    // Labels must be integral and 1-D.
    let fl = write(
        &d,
        "float-labels",
        &idx_bytes(0x0D, &[2], &[0x3f, 0xc0, 0, 0, 0, 0, 0, 0]),
    );
    let img = write(&d, "img", &good_images);
    assert_err(
        load(&format!("idx:{},{}", img.display(), fl.display())),
        &fl,
        &["label 0", "1.5"],
    );
}

#[test]
fn a_lying_idx_header_costs_no_huge_allocation() {
    // Claims 4 GiB of data but holds 3 bytes: refused at once, reading only what is there.
    let d = dir("idx-lie");
    let p = write(&d, "lie", &idx_bytes(0x08, &[65536, 65536], &[1, 2, 3]));
    let started = std::time::Instant::now();
    let e = idx::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("truncated") && e.contains("only 3 follow the header"),
        "{e}"
    );
    assert!(started.elapsed().as_secs_f64() < 1.0);
}

#[test]
fn csv_files_load_with_header_detection_and_label_columns() {
    let d = dir("csv-ok");
    let p = write(
        &d,
        "a.csv",
        b"f1,f2,label\n0.5,1,0\n1.5,2,1\n2.5,3,2\n3.5,4,1\n4.5,5,0\n",
    );
    let (x, y) = csv::load(&p, None).unwrap();
    assert_eq!(
        x,
        Matrix::from_vec(5, 2, vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0])
    );
    assert_eq!(y.as_slice(), &[0.0, 1.0, 2.0, 1.0, 0.0]);
    let (x, y) = csv::load(&p, Some("f1")).unwrap();
    assert_eq!(y.as_slice(), &[0.5, 1.5, 2.5, 3.5, 4.5]);
    assert_eq!(x.get(0, 1), 0.0);
    let ds = load(&p.display().to_string()).unwrap();
    assert_eq!(ds.task, Task::Classification { classes: 3 });
    assert_eq!((ds.train.len(), ds.test.len()), (4, 1));
    // Non-integer labels make a regression set; without a header columns go by index.
    let r = write(
        &d,
        "r.csv",
        b"1,2,0.5\n2,3,1.5\n3,4,2.5\n4,5,3.5\n5,6,4.5\n",
    );
    assert!(matches!(
        load(&r.display().to_string()).unwrap().task,
        Task::Regression { outputs: 1 }
    ));
}

#[test]
fn broken_csv_files_are_refused_with_line_and_column() {
    let d = dir("csv-bad");
    let cases: Vec<(&str, &[u8], Vec<&str>)> = vec![
        (
            "text.csv",
            b"1,2,0\n3,abc,1\n",
            vec!["line 2, column 2", "'abc' is not a number"],
        ),
        ("ragged.csv", b"1,2,0\n3,4\n", vec!["line 2", "ragged"]),
        (
            "nan.csv",
            b"1,2,0\n3,NaN,1\n",
            vec!["line 2, column 2", "not finite"],
        ),
        (
            "inf.csv",
            b"a,b,y\n1,2,0\ninf,4,1\n",
            vec!["line 3, column 1 ('a')", "not finite"],
        ),
        ("empty.csv", b"", vec!["empty file"]),
        ("header.csv", b"a,b,y\n", vec!["no data rows"]),
        ("one.csv", b"1\n2\n", vec!["at least two columns"]),
    ];
    for (name, bytes, needles) in cases {
        let p = write(&d, name, bytes);
        assert_err(load(&p.display().to_string()), &p, &needles);
    }
    let p = write(&d, "neg.csv", b"1,2,-1\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n");
    let e = DataSpec::parse("--data", &p.display().to_string())
        .unwrap()
        .load(
            &DataOptions {
                task: Some(initscope::data::TaskKind::Classification),
                ..Default::default()
            },
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 0") && e.contains("-1") && e.contains("non-negative integer"),
        "{e}"
    );
    let p = write(&d, "big.csv", b"1,2,1e9\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n");
    let e = DataSpec::parse("--data", &p.display().to_string())
        .unwrap()
        .load(
            &DataOptions {
                task: Some(initscope::data::TaskKind::Classification),
                ..Default::default()
            },
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range"), "{e}");
}

fn npy_header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let mut h = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b
}

#[test]
fn npy_pairs_load_and_broken_npy_files_are_refused() {
    let d = dir("npy");
    let x: Vec<f32> = (0..20).map(|i| i as f32 * 0.5).collect();
    let xp = write(
        &d,
        "x.npy",
        &npy::to_npy_bytes(&npy::NpyData::F32(&x), &[10, 2]),
    );
    let yp = write(
        &d,
        "y.npy",
        &npy::to_npy_bytes(&npy::NpyData::I64(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]), &[10]),
    );
    let ds = load(&format!("npy:{},{}", xp.display(), yp.display())).unwrap();
    assert_eq!(ds.task, Task::Classification { classes: 2 });
    assert!(matches!(ds.train.x, Features::F32(_)));
    // Big-endian data reads too.
    let mut be = npy_header(">f8", false, "(2,)");
    be.extend_from_slice(&1.5f64.to_be_bytes());
    be.extend_from_slice(&(-2.0f64).to_be_bytes());
    let a = npy::read(&write(&d, "be.npy", &be)).unwrap();
    assert_eq!((a.value(0), a.value(1)), (1.5, -2.0));

    let mut complex = npy_header("<c16", false, "(1,)");
    complex.extend_from_slice(&[0; 16]);
    let mut fortran = npy_header("<f8", true, "(2, 2)");
    fortran.extend_from_slice(&[0; 32]);
    let mut short = npy_header("<f8", false, "(3,)");
    short.extend_from_slice(&[0; 16]);
    // Ten rows like y (row counts are compared, on the headers, before any data is read).
    let mut nan = npy_header("<f8", false, "(10,)");
    nan.extend_from_slice(&0.0f64.to_le_bytes());
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    nan.extend_from_slice(&[0; 64]);
    let mut lie = npy_header("<f8", false, "(100000000000, 100000000000)");
    lie.extend_from_slice(&[0; 8]);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("complex.npy", complex, vec!["unsupported dtype '<c16'"]),
        ("fortran.npy", fortran, vec!["Fortran-order"]),
        (
            "short.npy",
            short,
            vec![
                "truncated",
                "needs 24 data bytes, but only 16 follow the header",
            ],
        ),
        ("nan.npy", nan, vec!["element 1", "NaN"]),
        ("lie.npy", lie, vec!["overflows"]),
        (
            "magic.npy",
            b"NUMPY\x01\x00rubbish".to_vec(),
            vec!["byte 0", "bad magic"],
        ),
        ("empty.npy", Vec::new(), vec!["empty file"]),
    ];
    for (name, bytes, needles) in cases {
        let p = write(&d, name, &bytes);
        assert_err(
            load(&format!("npy:{},{}", p.display(), yp.display())),
            &p,
            &needles,
        );
    }
    // Row counts must agree.
    let y3 = write(
        &d,
        "y3.npy",
        &npy::to_npy_bytes(&npy::NpyData::I64(&[0, 1, 0]), &[3]),
    );
    assert_err(
        load(&format!("npy:{},{}", xp.display(), y3.display())),
        &y3,
        &["3 targets for 10 feature rows"],
    );
}

#[test]
fn npz_archives_need_x_and_y() {
    let d = dir("npz");
    let only_x = npy::to_npz_bytes(&[(
        "x",
        npy::to_npy_bytes(&npy::NpyData::F64(&[1.0, 2.0]), &[2, 1]),
    )])
    .unwrap();
    let p = write(&d, "only_x.npz", &only_x);
    assert_err(load(&p.display().to_string()), &p, &["no array 'y'"]);
    let p = write(&d, "junk.npz", b"PK not really");
    assert_err(load(&p.display().to_string()), &p, &["not a valid .npz"]);
}

#[test]
fn named_image_sets_explain_how_to_get_them_when_missing() {
    let empty = dir("no-mnist");
    let e = DataSpec::parse("--data", "mnist")
        .unwrap()
        .load(&DataOptions::default(), Some(&empty))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mnist not found") && e.contains("--data-dir"),
        "{e}"
    );
    // Files put in --data-dir are found (plain, not gzipped here).
    let d = dir("fake-mnist");
    let sub = d.join("mnist");
    std::fs::create_dir_all(&sub).unwrap();
    let img = idx_bytes(0x08, &[4, 2, 2], &[0; 16]);
    let lbl = idx_bytes(0x08, &[4], &[0, 1, 2, 3]);
    for (f, b) in [
        ("train-images-idx3-ubyte", &img),
        ("train-labels-idx1-ubyte", &lbl),
        ("t10k-images-idx3-ubyte", &img),
        ("t10k-labels-idx1-ubyte", &lbl),
    ] {
        write(&sub, f, b);
    }
    let ds = DataSpec::parse("--data", "mnist")
        .unwrap()
        .load(&DataOptions::default(), Some(&d))
        .unwrap();
    assert_eq!((ds.train.len(), ds.test.len(), ds.input_dim()), (4, 4, 4));
}

#[test]
fn validation_split_and_standardization_use_the_training_statistics() {
    let opts = DataOptions {
        val_fraction: 0.25,
        standardize: true,
        ..Default::default()
    };
    let ds = DataSpec::parse("--data", "blobs:n=400")
        .unwrap()
        .load(&opts, None)
        .unwrap();
    let val = ds.val.as_ref().unwrap();
    assert_eq!((ds.train.len(), val.len(), ds.test.len()), (300, 100, 400));
    for (lo, hi, mean, std) in ds.train.x.column_stats() {
        assert!(
            mean.abs() < 1e-12 && (std - 1.0).abs() < 1e-12,
            "train column standardized: {mean} {std}"
        );
        assert!(lo < hi);
    }
    // Validation and test are transformed with the training statistics, not their own.
    let test_means: Vec<f64> = ds.test.x.column_stats().iter().map(|c| c.2).collect();
    assert!(test_means.iter().any(|m| m.abs() > 1e-9));
}

fn real_data_required() -> bool {
    std::env::var_os("INITSCOPE_REQUIRE_REAL_DATA").is_some()
}

#[test]
fn fashion_mnist_from_debian_loads_as_f32_and_trains() {
    let dirs = initscope::data::search_dirs(None);
    if idx::find_image_set(initscope::data::ImageSet::FashionMnist, &dirs).is_none() {
        assert!(
            !real_data_required(),
            "INITSCOPE_REQUIRE_REAL_DATA is set but Fashion-MNIST is not installed"
        );
        eprintln!("skipping: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
        return;
    }
    let ds = load("fashion-mnist").unwrap();
    assert_eq!(
        (ds.train.len(), ds.test.len(), ds.input_dim()),
        (60_000, 10_000, 784)
    );
    assert!(matches!(ds.train.x, Features::F32(_)));
    if let Labels::Classes(c) = &ds.train.y {
        assert!((0..10).all(|k| c.iter().filter(|&&l| l == k).count() == 6000));
    }
    let raw: initscope::RawConfig = toml::from_str("data = \"fashion-mnist\"\nhidden = \"32\"\nsteps = 100\nbatch = 64\ndiagnostics = \"off\"\neval_every = 1000").unwrap();
    let (cfg, data) = initscope::config::validate(&raw).unwrap();
    let out = initscope::train(&cfg, &data, &mut |_| {}).unwrap();
    assert!(out.summary.test_acc.unwrap() > 0.6, "{:?}", out.summary);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn npz_export_then_load_gives_the_same_arrays(
        rows in 1usize..30, cols in 1usize..6, seed in 0u64..1000, f32s in any::<bool>(),
    ) {
        let mut r = initscope::rng::stream(seed, initscope::rng::Stream::Data);
        let vals: Vec<f64> = (0..rows * cols).map(|_| initscope::rng::normal(&mut r) * 1e3).collect();
        let x = if f32s {
            Features::from(Matrix::<f32>::from_vec(rows, cols, vals.iter().map(|&v| v as f32).collect()))
        } else {
            Features::from(Matrix::<f64>::from_vec(rows, cols, vals.clone()))
        };
        let y = Labels::Classes((0..rows).map(|i| (i % 3) as u32).collect());
        let ds = initscope::Dataset {
            name: "prop".into(),
            task: Task::Classification { classes: 3 },
            train: initscope::data::Split { x: x.clone(), y: y.clone() },
            val: None,
            test: initscope::data::Split { x: x.clone(), y: y.clone() },
        };
        let d = dir(&format!("prop-{seed}-{rows}-{cols}"));
        let p = write(&d, "a.npz", &export_npz(&ds).unwrap());
        let back = npy::read_npz(&p).unwrap();
        prop_assert_eq!(&back.x, &x);
        prop_assert_eq!(back.y.as_slice().iter().map(|&v| v as u32).collect::<Vec<_>>(), (0..rows).map(|i| (i % 3) as u32).collect::<Vec<_>>());
        prop_assert_eq!(back.x_test.unwrap(), x);
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn csv_export_then_parse_gives_the_same_arrays(
        rows in 1usize..30, cols in 1usize..6, seed in 0u64..1000,
    ) {
        let mut r = initscope::rng::stream(seed, initscope::rng::Stream::Data);
        let x: Vec<Vec<f64>> = (0..rows).map(|_| (0..cols).map(|_| initscope::rng::normal(&mut r) * 1e-3).collect()).collect();
        let y: Vec<f64> = (0..rows).map(|_| initscope::rng::normal(&mut r)).collect();
        let bytes = csv::to_csv_bytes(&x, &y);
        let (bx, by) = csv::parse(&bytes, Path::new("prop.csv"), None).unwrap();
        prop_assert_eq!(bx.as_slice(), &x.concat()[..]);
        prop_assert_eq!(by.as_slice(), &y[..]);
    }
}

// Issue 14: bad input found by a probe.

fn npy_with(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut b = npy_header(descr, false, shape);
    b.extend_from_slice(data);
    b
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn an_npy_header_promising_more_than_the_file_holds_is_refused_before_reading() {
    // 10^9 rows of f4 (4 GB) promised, 8 bytes present: refused on the file's length, before
    // any data is read, with a message saying how much the file holds.
    let d = dir("npy-promise");
    let p = write(&d, "lie.npy", &npy_with("<f4", "(1000000000,)", &[0; 8]));
    let y = write(&d, "y.npy", &npy_with("<i8", "(2,)", &i64s(&[0, 1])));
    let started = std::time::Instant::now();
    let e = npy::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("needs 4000000000 data bytes, but only 8 follow the header"),
        "{e}"
    );
    assert!(started.elapsed().as_secs_f64() < 1.0);
    assert_eq!(
        npy::read_header(&p).unwrap_err().to_string(),
        e,
        "the header alone refuses it"
    );
    assert_err(
        load(&format!("npy:{},{}", p.display(), y.display())),
        &p,
        &["only 8 follow the header"],
    );
    // The same inside an .npz: the entry's uncompressed size is what the array may hold.
    let npz = npy::to_npz_bytes(&[
        ("x", npy_with("<f4", "(1000000000, 1)", &[0; 8])),
        ("y", npy_with("<i8", "(2,)", &i64s(&[0, 1]))),
    ])
    .unwrap();
    let p = write(&d, "lie.npz", &npz);
    assert_err(
        load(&p.display().to_string()),
        &p,
        &[
            "x.npy",
            "needs 4000000000 data bytes, but only 8 follow the header",
        ],
    );
    // A shape whose other axes overflow is refused even when a zero makes its size 0 (its
    // column count would overflow).
    let p = write(
        &d,
        "absurd.npy",
        &npy_with("<f8", "(0, 1099511627776, 1099511627776)", &[]),
    );
    assert_err(
        load(&format!("npy:{},{}", p.display(), y.display())),
        &p,
        &["overflows the 16 GiB limit"],
    );
    let p = write(
        &d,
        "absurd.npz",
        &npy::to_npz_bytes(&[
            (
                "x",
                npy_with("<f8", "(0, 1099511627776, 1099511627776)", &[]),
            ),
            ("y", npy_with("<i8", "(0,)", &[])),
        ])
        .unwrap(),
    );
    assert_err(load(&p.display().to_string()), &p, &["overflows"]);
}

#[test]
fn npy_row_counts_are_compared_on_the_headers_before_loading_either_file() {
    // x's data has a NaN, which loading it would report; the row mismatch is found first, on
    // the headers, and names y.
    let d = dir("npy-rows-first");
    let x = write(
        &d,
        "x.npy",
        &npy_with("<f8", "(4, 1)", &f64s(&[f64::NAN, 1.0, 2.0, 3.0])),
    );
    let y = write(&d, "y.npy", &npy_with("<i8", "(3,)", &i64s(&[0, 1, 0])));
    assert_err(
        load(&format!("npy:{},{}", x.display(), y.display())),
        &y,
        &["3 targets for 4 feature rows"],
    );
    let npz = |x_test: &[u8], y_test: &[u8]| {
        npy::to_npz_bytes(&[
            ("x", npy_with("<f8", "(2, 1)", &f64s(&[0.0, 1.0]))),
            ("y", npy_with("<i8", "(2,)", &i64s(&[0, 1]))),
            ("x_test", x_test.to_vec()),
            ("y_test", y_test.to_vec()),
        ])
        .unwrap()
    };
    let p = write(
        &d,
        "rows.npz",
        &npy::to_npz_bytes(&[
            (
                "x",
                npy_with("<f8", "(4, 1)", &f64s(&[f64::NAN, 1.0, 2.0, 3.0])),
            ),
            ("y", npy_with("<i8", "(3,)", &i64s(&[0, 1, 0]))),
        ])
        .unwrap(),
    );
    assert_err(
        load(&p.display().to_string()),
        &p,
        &["x/y: 4 rows of x but 3 of y"],
    );
    let p = write(
        &d,
        "test-rows.npz",
        &npz(
            &npy_with("<f8", "(2, 1)", &f64s(&[f64::NAN, 1.0])),
            &npy_with("<i8", "(1,)", &i64s(&[0])),
        ),
    );
    assert_err(
        load(&p.display().to_string()),
        &p,
        &["x_test/y_test: 2 rows of x but 1 of y"],
    );
}

#[test]
fn sources_with_zero_rows_are_refused_naming_the_file() {
    let d = dir("zero-rows");
    let x = write(&d, "x.npy", &npy_with("<f8", "(0, 2)", &[]));
    let y = write(&d, "y.npy", &npy_with("<i8", "(0,)", &[]));
    let e = load(&format!("npy:{},{}", x.display(), y.display())).unwrap_err();
    assert_eq!(e, format!("{}: holds 0 rows", x.display()));
    let p = write(
        &d,
        "zero.npz",
        &npy::to_npz_bytes(&[
            ("x", npy_with("<f8", "(0, 2)", &[])),
            ("y", npy_with("<i8", "(0,)", &[])),
        ])
        .unwrap(),
    );
    assert_err(
        load(&p.display().to_string()),
        &p,
        &["array 'x' holds 0 rows"],
    );
    let img = write(&d, "img", &idx_bytes(0x08, &[0, 2, 2], &[]));
    let lbl = write(&d, "lbl", &idx_bytes(0x08, &[0], &[]));
    let e = load(&format!("idx:{},{}", img.display(), lbl.display())).unwrap_err();
    assert_eq!(e, format!("{}: holds 0 rows", img.display()));
}

#[test]
fn a_directory_in_place_of_a_data_file_is_named_as_such() {
    let d = dir("dirs");
    let y = write(&d, "y.npy", &npy_with("<i8", "(2,)", &i64s(&[0, 1])));
    let lbl = write(&d, "lbl", &idx_bytes(0x08, &[2], &[0, 1]));
    for (name, spec, what) in [
        ("a.npz", "{}", "an .npz file"),
        ("npz-dir", "npz:{}", "an .npz file"),
        ("a.csv", "{}", "a CSV file"),
        ("a.npy", "npy:{}", "an .npy file"),
        ("images", "idx:{}", "an IDX file"),
    ] {
        let p = d.join(name);
        std::fs::create_dir_all(&p).unwrap();
        let mut spec = spec.replace("{}", &p.display().to_string());
        if spec.starts_with("npy:") {
            spec = format!("{spec},{}", y.display());
        } else if spec.starts_with("idx:") {
            spec = format!("{spec},{}", lbl.display());
        }
        let e = load(&spec).unwrap_err();
        assert_eq!(e, format!("{}: is a directory, not {what}", p.display()));
    }
}

#[test]
fn a_csv_of_nul_bytes_is_refused_at_once_as_not_text() {
    let d = dir("csv-nul");
    let p = write(&d, "zeros.csv", &vec![0u8; 4 << 20]);
    let started = std::time::Instant::now();
    let e = load(&p.display().to_string()).unwrap_err();
    assert_eq!(
        e,
        format!(
            "{}: not a text CSV file (NUL byte at line 1, byte 0)",
            p.display()
        )
    );
    assert!(
        started.elapsed().as_secs_f64() < 0.5,
        "refused at the first chunk, not after reading 4 MiB"
    );
    // A NUL byte later on is found where it is.
    let p = write(&d, "late.csv", b"a,b,y\n1,2,0\n3,4\x00,1\n");
    assert_err(
        load(&p.display().to_string()),
        &p,
        &["not a text CSV file (NUL byte at line 3, byte 15)"],
    );
}

#[test]
fn a_csv_line_longer_than_the_cap_is_refused() {
    // 18 MiB without a newline: refused once the line passes 16 MiB.
    let d = dir("csv-long");
    let p = write(&d, "long.csv", "1,".repeat(9 << 20).as_bytes());
    assert_err(
        load(&p.display().to_string()),
        &p,
        &["line 1 is longer than 16 MiB"],
    );
    assert_eq!(csv::MAX_LINE_BYTES, 16 << 20);
    // An endless stream is refused as well (the reader does not grow a record without bound).
    let e = csv::parse_reader(
        std::io::Read::chain(&b"a,b\n1,2\n"[..], std::io::repeat(b'7')),
        Path::new("endless.csv"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "endless.csv: line 3 is longer than 16 MiB (not a CSV file of numbers?)"
    );
}

#[test]
fn csv_errors_give_the_files_line_and_the_cells_column() {
    let d = dir("csv-cells");
    let cases: Vec<(&str, &[u8], &str)> = vec![
        // The probe's file: an empty cell in the first data row.
        (
            "empty.csv",
            b"a,b,label\n1,,0\n2,3,1\n",
            "line 2, column 2 ('b'): empty cell",
        ),
        // Without a header, an empty cell in the first row is a data row's problem.
        (
            "first.csv",
            b"1,,0\n2,3,1\n",
            "line 1, column 2: empty cell",
        ),
        (
            "noheader.csv",
            b"1,2,0\n3,4,1\n5,,1\n",
            "line 3, column 2: empty cell",
        ),
        // Comment lines count.
        (
            "comment.csv",
            b"# made by hand\na,b,y\n1,2,0\n3,4,\n",
            "line 4, column 3 ('y'): empty cell",
        ),
        // Two text rows: the second is the one at fault, not the header.
        (
            "twotext.csv",
            b"a,b,y\nc,d,z\n1,2,0\n",
            "line 2, column 1 ('a'): 'c' is not a number",
        ),
        // A quoted field spanning lines: the cells after it are on its last line.
        (
            "quoted.csv",
            b"a,b,y\n\"1\n\",zz,0\n",
            "line 3, column 2 ('b'): 'zz' is not a number",
        ),
        // The quoted text is shown on one line.
        (
            "quoted2.csv",
            b"a,b,y\n1,\"2\n3\",0\n",
            "line 2, column 2 ('b'): '2\\n3' is not a number",
        ),
        (
            "quoted3.csv",
            b"a,b,y\n1,2,0\n\"4\",\"\",1\n",
            "line 3, column 2 ('b'): empty cell",
        ),
    ];
    for (name, bytes, message) in cases {
        let p = write(&d, name, bytes);
        let e = load(&p.display().to_string()).unwrap_err();
        assert_eq!(e, format!("{}: {message}", p.display()), "{name}");
    }
    // Quoted numbers are numbers.
    let p = write(
        &d,
        "ok.csv",
        b"\"a\",\"b\",y\n\"1\",2,0\n3,\" 4 \",1\n5,6,0\n7,8,1\n9,10,0\n",
    );
    let (x, y) = csv::load(&p, None).unwrap();
    assert_eq!(x.get(1, 1), 4.0);
    assert_eq!(y.as_slice(), &[0.0, 1.0, 0.0, 1.0, 0.0]);
}

/// Arrays handed over in memory (the Python package) follow the rules of an `npy:X,Y` pair: the
/// same rows end up in the same splits, the same problems are refused, naming the array.
#[test]
fn arrays_in_memory_split_like_npy_files_and_name_their_problems() {
    use initscope::config::{validate, validate_arrays, RawConfig};
    use initscope::data::from_arrays;
    let d = dir("arrays");
    let n = 50;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    let y: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let xp = write(
        &d,
        "x.npy",
        &npy::to_npy_bytes(&npy::NpyData::F32(&x), &[n, 3]),
    );
    let yp = write(
        &d,
        "y.npy",
        &npy::to_npy_bytes(&npy::NpyData::I64(&y), &[n]),
    );
    let features = || Features::from(Matrix::<f32>::from_vec(n, 3, x.clone()));
    let targets = || Matrix::from_vec(n, 1, y.iter().map(|&v| v as f64).collect());
    let options = DataOptions {
        test_fraction: 0.3,
        val_fraction: 0.2,
        ..DataOptions::default()
    };
    let file = DataSpec::parse("--data", &format!("npy:{},{}", xp.display(), yp.display()))
        .unwrap()
        .load(&options, None)
        .unwrap();
    let (spec, mem) = from_arrays(features(), targets(), &options).unwrap();
    assert_eq!(mem.task, file.task);
    assert_eq!(mem.train, file.train);
    assert_eq!(mem.test, file.test);
    assert_eq!(mem.val, file.val);
    // The spec names the arrays by their contents and reads back; it cannot be loaded.
    let text = spec.spec();
    assert!(
        text.starts_with("arrays:") && text.len() == "arrays:".len() + 16,
        "{text}"
    );
    assert_eq!(DataSpec::parse("--data", &text).unwrap(), spec);
    let refused = spec.load(&options, None).unwrap_err().to_string();
    assert!(refused.contains("passed in memory"), "{refused}");
    assert!(DataSpec::parse("--data", "arrays:xyz").is_err());
    let mut changed = x.clone();
    changed[7] += 1.0;
    let other = from_arrays(
        Features::from(Matrix::<f32>::from_vec(n, 3, changed)),
        targets(),
        &options,
    )
    .unwrap()
    .0;
    assert_ne!(other, spec);
    let wide = from_arrays(
        Features::from(features().to_matrix::<f64>()),
        targets(),
        &options,
    )
    .unwrap()
    .0;
    assert_ne!(
        wide, spec,
        "the precision the arrays are stored in is part of the digest"
    );

    // A run on the arrays is the run on the files, but for the data spec in its config.
    let raw = RawConfig {
        steps: Some(20),
        test_fraction: Some(0.3),
        val_fraction: Some(0.2),
        ..RawConfig::default()
    };
    let (cfg, data) = validate_arrays(&raw, features(), targets()).unwrap();
    assert_eq!(cfg.data, spec);
    let from_file = RawConfig {
        data: Some(format!("npy:{},{}", xp.display(), yp.display())),
        ..raw.clone()
    };
    let (file_cfg, file_data) = validate(&from_file).unwrap();
    assert_eq!((data.train, data.test), (file_data.train, file_data.test));
    assert_eq!(cfg.arch, file_cfg.arch);
    assert_ne!(cfg.run_id(), file_cfg.run_id());
    assert_eq!(
        validate_arrays(&raw, features(), targets())
            .unwrap()
            .0
            .run_id(),
        cfg.run_id()
    );
    let both = validate_arrays(&from_file, features(), targets()).unwrap_err();
    assert!(both.to_string().contains("arrays are given"), "{both}");

    // Problems, named by array, on one line, as the files' are.
    let opts = DataOptions::default();
    let err = |x: Features, y: Matrix<f64>| from_arrays(x, y, &opts).unwrap_err().to_string();
    assert_eq!(
        err(
            Features::from(Matrix::<f64>::zeros(0, 3)),
            Matrix::zeros(0, 1)
        ),
        "X: holds 0 rows"
    );
    assert_eq!(
        err(
            Features::from(Matrix::<f64>::zeros(4, 0)),
            Matrix::zeros(4, 1)
        ),
        "X: has no features (shape (4, 0))"
    );
    assert_eq!(
        err(features(), Matrix::zeros(n - 1, 1)),
        format!("y: {} targets for {n} feature rows", n - 1)
    );
    let mut nan = x.clone();
    nan[3 * 4 + 2] = f32::NAN;
    assert_eq!(
        err(
            Features::from(Matrix::<f32>::from_vec(n, 3, nan)),
            targets()
        ),
        "X: element (4, 2) is NaN (NaN and Inf are not data)"
    );
    let mut inf = targets();
    inf.set(9, 0, f64::INFINITY);
    assert_eq!(
        err(features(), inf),
        "y: element (9, 0) is inf (NaN and Inf are not data)"
    );
    let mut half = targets();
    half.set(2, 0, 0.5);
    let class = DataOptions {
        task: Some(initscope::data::TaskKind::Classification),
        ..DataOptions::default()
    };
    assert_eq!(
        from_arrays(features(), half, &class)
            .unwrap_err()
            .to_string(),
        "y: row 2: label 0.5 is not a non-negative integer class index"
    );
}

/// Arrays borrowed in place (the Python package's C-contiguous X in the training precision) make
/// the data set owned arrays make, bit for bit and with the same digest, and hold no copy of the
/// features: every split's rows, and training's view of them, are rows of the caller's buffer.
/// Standardizing makes the one copy it must and leaves the caller's buffer as it was.
#[test]
fn borrowed_arrays_are_read_in_place_and_make_the_same_run() {
    use initscope::batch::Prepared;
    use initscope::config::{validate_arrays, RawConfig};
    use initscope::data::{from_arrays, Rows};
    let n = 40;
    let x: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 5) % 13) as f32 * 0.25 - 1.0)
        .collect();
    let targets = || Matrix::from_vec(n, 1, (0..n).map(|i| (i % 2) as f64).collect());
    let owned = || Features::from(Matrix::<f32>::from_vec(n, 3, x.clone()));
    let borrowed = || Features::F32(Rows::borrowed(n, 3, &x).unwrap());
    let in_buffer = |row: &[f32]| {
        let range = x.as_ptr_range();
        range.contains(&row.as_ptr()) && row.len() == 3
    };
    for options in [
        DataOptions::default(),
        DataOptions {
            test_fraction: 0.25,
            val_fraction: 0.2,
            ..DataOptions::default()
        },
    ] {
        let (spec, data) = from_arrays(borrowed(), targets(), &options).unwrap();
        let (own_spec, own) = from_arrays(owned(), targets(), &options).unwrap();
        assert_eq!((&spec, &data), (&own_spec, &own));
        for s in [Some(&data.train), Some(&data.test), data.val.as_ref()]
            .into_iter()
            .flatten()
        {
            let Features::F32(rows) = &s.x else {
                panic!("f32 features stay f32")
            };
            assert!((0..rows.rows()).all(|i| in_buffer(rows.row(i))));
            let prepared = Prepared::<f32>::new(s, initscope::Loss::BceWithLogits, 1);
            assert!((0..prepared.len()).all(|i| in_buffer(prepared.x.row(i))));
        }
    }
    let raw = RawConfig {
        steps: Some(10),
        ..RawConfig::default()
    };
    let (cfg, data) = validate_arrays(&raw, borrowed(), targets()).unwrap();
    let (own_cfg, own) = validate_arrays(&raw, owned(), targets()).unwrap();
    assert_eq!(cfg.run_id(), own_cfg.run_id());
    assert_eq!(data, own);

    let standardized = DataOptions {
        standardize: true,
        ..DataOptions::default()
    };
    let before = x.clone();
    let (_, data) = from_arrays(borrowed(), targets(), &standardized).unwrap();
    let (_, own) = from_arrays(owned(), targets(), &standardized).unwrap();
    assert_eq!(data, own);
    let Features::F32(rows) = &data.train.x else {
        panic!("f32 features stay f32")
    };
    assert!(!in_buffer(rows.row(0)), "standardized rows are a copy");
    assert_eq!(x, before, "the caller's buffer is not changed");
}
