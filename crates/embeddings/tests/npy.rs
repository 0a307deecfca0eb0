//! Import of the original HERS `.npy` feature files.

use embeddings::{NpyImport, import_npy, read_set};
use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

#[test]
fn row_major_and_dimension_major_features_import_to_the_same_set() {
    let dir = tempfile::tempdir().expect("tmp");
    let feats = Array2::from_shape_fn((6, 4), |(i, j)| (i * 4 + j) as f32);
    let labels = Array1::from(vec![0i64, 0, 1, 1, 2, 2]);
    let (f, fd, l) = (dir.path().join("f.npy"), dir.path().join("fd.npy"), dir.path().join("l.npy"));
    write_npy(&f, &feats).expect("f");
    write_npy(&fd, &feats.t().to_owned()).expect("fd");
    write_npy(&l, &labels).expect("l");
    let out = dir.path().join("o.parquet");
    let spec = NpyImport { features: f.clone(), labels: l.clone(), ids: None, dimension_major: false };
    assert_eq!(import_npy(&spec, &out).expect("import"), (6, 4));
    let a = read_set(&out).expect("read");
    assert_eq!(a.row(5), &[20.0, 21.0, 22.0, 23.0]);
    let b = NpyImport { features: fd.clone(), dimension_major: true, ..spec.clone() }.load().expect("dm");
    assert_eq!(a.data, b.data);
    // Forgetting the flag is caught and the fix suggested.
    let e = NpyImport { features: fd, ..spec.clone() }.load().expect_err("mismatch").to_string();
    assert!(e.contains("--dimension-major"), "{e}");
}

#[test]
fn nan_and_duplicate_ids_in_npy_are_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut feats = Array2::<f32>::zeros((3, 2));
    let (f, l, i) = (dir.path().join("f.npy"), dir.path().join("l.npy"), dir.path().join("i.npy"));
    write_npy(&l, &Array1::from(vec![0i32, 1, 2])).expect("l");
    write_npy(&i, &Array1::from(vec![7i64, 8, 7])).expect("i");
    write_npy(&f, &feats).expect("f");
    let spec = NpyImport { features: f.clone(), labels: l, ids: Some(i), dimension_major: false };
    assert!(spec.load().expect_err("dup").to_string().contains("id 7 appears twice"));
    feats[[1, 1]] = f32::NAN;
    write_npy(&f, &feats).expect("f");
    let e = NpyImport { ids: None, ..spec }.load().expect_err("nan").to_string();
    assert!(e.contains("row 1") && e.contains("NaN"), "{e}");
}
