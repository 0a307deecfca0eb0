//! The parquet format: round trips, accepted variants, and a clear error for every bad input.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use embeddings::{EmbeddingReader, EmbeddingSet, EmbeddingWriter, Error, Ids, read_set, write_set};
use parquet::arrow::ArrowWriter;

fn write_batch(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let schema = Arc::new(Schema::new(
        cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).expect("batch");
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).expect("create"), schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

fn list(rows: &[Vec<f32>]) -> ArrayRef {
    let values: Vec<f32> = rows.iter().flatten().copied().collect();
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.len()));
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        offsets,
        Arc::new(Float32Array::from(values)),
        None,
    ))
}

fn ints(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn small_set() -> EmbeddingSet {
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    EmbeddingSet::new(Ids::Int(vec![10, 11, 12, 13]), vec![0, 0, 1, 1], 3, data).expect("valid")
}

fn err_of(path: &Path) -> String {
    read_set(path).expect_err("must fail").to_string()
}

#[test]
fn write_then_read_gives_the_same_set() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("s.parquet");
    let set = small_set();
    write_set(&p, &set).expect("write");
    let back = read_set(&p).expect("read");
    assert_eq!(back.ids, set.ids);
    assert_eq!(back.labels, set.labels);
    assert_eq!(back.dim, 3);
    assert_eq!(back.data, set.data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o044, 0o044, "data files are readable by others, not 0600");
    }
}

#[test]
fn list_embeddings_string_ids_int32_labels_and_extra_columns_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("l.parquet");
    write_batch(
        &p,
        vec![
            ("id", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
            ("label", Arc::new(arrow::array::Int32Array::from(vec![5, 6])) as ArrayRef),
            ("embedding", list(&[vec![1.0, 0.0], vec![0.0, 1.0]])),
            ("source", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef),
        ],
    );
    let set = read_set(&p).expect("read");
    assert_eq!(set.ids, Ids::Str(vec!["a".into(), "b".into()]));
    assert_eq!(set.labels, vec![5, 6]);
    assert_eq!(set.dim, 2);
    assert_eq!(set.extra.len(), 1);
    assert_eq!(set.extra[0].0.name(), "source");
    // Extra columns survive a rewrite.
    let q = dir.path().join("l2.parquet");
    write_set(&q, &set).expect("write");
    let again = read_set(&q).expect("read");
    assert_eq!(again.extra[0].1.as_ref(), set.extra[0].1.as_ref());
}

#[test]
fn streaming_reader_yields_batches_covering_every_row() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("big.parquet");
    let n = 70_000; // more than two reader batches
    let set = EmbeddingSet::new(
        Ids::Int((0..n as i64).collect()),
        (0..n as i64).map(|i| i / 7).collect(),
        2,
        (0..2 * n).map(|i| i as f32).collect(),
    )
    .expect("valid");
    let mut w = EmbeddingWriter::create(&p, 2).expect("writer");
    w.write(&set.take(&(0..40_000).collect::<Vec<_>>())).expect("w1");
    w.write(&set.take(&(40_000..n).collect::<Vec<_>>())).expect("w2");
    assert_eq!(w.finish().expect("finish"), n);
    let r = EmbeddingReader::open(&p).expect("open");
    assert_eq!((r.dim(), r.num_rows()), (2, n));
    let batches: Vec<EmbeddingSet> = r.collect::<Result<_, _>>().expect("batches");
    assert!(batches.len() >= 2);
    let total: usize = batches.iter().map(|b| b.len()).sum();
    assert_eq!(total, n);
    assert_eq!(batches.last().expect("last").data.last().copied(), Some((2 * n - 1) as f32));
}

#[test]
fn missing_column_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("m.parquet");
    write_batch(&p, vec![("id", ints(&[1])), ("embedding", list(&[vec![1.0]]))]);
    let e = err_of(&p);
    assert!(e.contains("missing column `label`") && e.contains("m.parquet"), "{e}");
}

#[test]
fn ragged_embeddings_name_the_row_and_lengths() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("r.parquet");
    write_batch(
        &p,
        vec![
            ("id", ints(&[1, 2, 3])),
            ("label", ints(&[0, 0, 1])),
            ("embedding", list(&[vec![1.0, 2.0], vec![1.0, 2.0], vec![3.0]])),
        ],
    );
    let e = err_of(&p);
    assert!(e.contains("row 2") && e.contains("length 1") && e.contains("expected 2"), "{e}");
}

#[test]
fn nan_and_inf_are_reported_with_row_and_dimension() {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, bad) in [("nan", f32::NAN), ("inf", f32::INFINITY)] {
        let p = dir.path().join(format!("{name}.parquet"));
        write_batch(
            &p,
            vec![
                ("id", ints(&[1, 2])),
                ("label", ints(&[0, 1])),
                ("embedding", list(&[vec![1.0, 2.0], vec![1.0, bad]])),
            ],
        );
        let e = err_of(&p);
        assert!(e.contains("row 1") && e.contains("dimension 1") && e.contains("non-finite"), "{e}");
    }
}

#[test]
fn duplicate_ids_name_both_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("d.parquet");
    write_batch(
        &p,
        vec![
            ("id", ints(&[4, 5, 4])),
            ("label", ints(&[0, 1, 2])),
            ("embedding", list(&[vec![1.0], vec![2.0], vec![3.0]])),
        ],
    );
    let e = err_of(&p);
    assert!(e.contains("id 4 appears twice (rows 0 and 2)"), "{e}");
}

#[test]
fn empty_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("e.parquet");
    write_batch(&p, vec![("id", ints(&[])), ("label", ints(&[])), ("embedding", list(&[]))]);
    let e = err_of(&p);
    assert!(e.contains("0 rows"), "{e}");
}

#[test]
fn truncated_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("t.parquet");
    write_set(&p, &small_set()).expect("write");
    let bytes = std::fs::read(&p).expect("read");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("truncate");
    let e = err_of(&p);
    assert!(e.contains("not a readable parquet file") && e.contains("t.parquet"), "{e}");
    let e = err_of(&dir.path().join("absent.parquet"));
    assert!(e.contains("absent.parquet") && e.to_lowercase().contains("no such file"), "{e}");
}

#[test]
fn null_embedding_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("n.parquet");
    let values = Arc::new(Float32Array::from(vec![1.0, 2.0]));
    let emb = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        1,
        values,
        Some(vec![true, false].into()),
    )
    .expect("array");
    write_batch(&p, vec![("id", ints(&[1, 2])), ("label", ints(&[0, 1])), ("embedding", Arc::new(emb))]);
    assert!(matches!(read_set(&p), Err(Error::Null { row: 1, column: "embedding", .. })));
}

#[test]
fn failed_write_leaves_no_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("keep.parquet");
    write_set(&p, &small_set()).expect("first write");
    let before = std::fs::read(&p).expect("read");
    {
        let mut w = EmbeddingWriter::create(&p, 3).expect("writer");
        w.write(&small_set()).expect("a good batch");
        let wrong_dim = EmbeddingSet::new(Ids::Int(vec![99]), vec![0], 2, vec![0.0, 1.0]).expect("valid");
        assert!(w.write(&wrong_dim).is_err());
        // dropped without finish: the write is abandoned
    }
    assert_eq!(std::fs::read(&p).expect("read"), before, "old file untouched");
    let fresh = dir.path().join("never.parquet");
    {
        let mut w = EmbeddingWriter::create(&fresh, 3).expect("writer");
        w.write(&small_set()).expect("batch");
    }
    assert!(!fresh.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}
