//! hers for Python: the native module `hers._hers` under the `hers` package. It wraps the Rust
//! libraries — keys and galleries (`encsearch`), the service client (`service`), trained
//! reductions (`dimred`) — on numpy arrays; the package's `__init__.py` re-exports it.
//!
//! Long calls run without the GIL, and Ctrl-C stops enrolment and search between segments
//! or probe batches. Every error becomes an exception of one hierarchy (`errors.rs`); nothing
//! panics across the boundary (the workspace denies `unwrap` on what a user can cause, and
//! PyO3 turns a panic into `PanicException` rather than an abort).

mod arrays;
mod client;
mod errors;
mod gallery;
mod keys;
mod reducer;
mod results;

use pyo3::prelude::*;

/// The native part of the `hers` package.
#[pymodule]
fn _hers(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<keys::Keys>()?;
    m.add_class::<gallery::Gallery>()?;
    m.add_class::<client::Client>()?;
    m.add_class::<reducer::Reducer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
