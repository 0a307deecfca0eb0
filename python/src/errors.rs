//! One exception hierarchy for every error of the Rust libraries, carrying the messages the CLI
//! prints:
//!
//! ```text
//! HersError
//! ├── InputError (also ValueError)          wrong dimension, NaN, empty input, bad argument
//! │   └── DuplicateIdError                  an id twice in the input, or already enrolled
//! ├── KeyMismatchError                      keys that are not the gallery's or the server's
//! ├── MissingFileError (also FileNotFoundError)
//! ├── GalleryError                          locked, damaged, or failing its seal
//! └── ServerError                           a refusal (HTTP status in `.status`)
//!     └── UnreachableError (also ConnectionError)   no answer from the server
//! ```

use pyo3::exceptions::{PyConnectionError, PyException, PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

pyo3::create_exception!(_hers, HersError, PyException, "Every error hers raises.");
pyo3::create_exception!(_hers, KeyMismatchError, HersError, "Keys that are not the gallery's or the server's.");
pyo3::create_exception!(_hers, GalleryError, HersError, "A gallery that is locked, damaged, or fails its seal.");

/// Registers the exception classes, building those with two bases (`InputError` is also a
/// `ValueError`, ...) with Python's own `type()`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HersError", py.get_type::<HersError>())?;
    m.add("KeyMismatchError", py.get_type::<KeyMismatchError>())?;
    m.add("GalleryError", py.get_type::<GalleryError>())?;
    let hers = py.get_type::<HersError>().into_any();
    let input =
        subclass(m, "InputError", PyTuple::new(py, [&hers, py.get_type::<PyValueError>().as_any()])?, INPUT_DOC)?;
    let doc = "An id twice in the input, or one the gallery holds already.";
    subclass(m, "DuplicateIdError", PyTuple::new(py, [&input])?, doc)?;
    let doc = "A file or directory that is not there.";
    subclass(m, "MissingFileError", PyTuple::new(py, [&hers, py.get_type::<PyFileNotFoundError>().as_any()])?, doc)?;
    let doc = "The server refused a request; `.status` is its HTTP status (0: none).";
    let server = subclass(m, "ServerError", PyTuple::new(py, [&hers])?, doc)?;
    subclass(
        m,
        "UnreachableError",
        PyTuple::new(py, [&server, py.get_type::<PyConnectionError>().as_any()])?,
        "No answer from the server: not running, wrong address, or the connection dropped.",
    )?;
    Ok(())
}

const INPUT_DOC: &str = "Bad input: wrong dimension, NaN or infinity, empty input, an argument out of range.";

fn subclass<'py>(
    m: &Bound<'py, PyModule>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = m.py();
    let ns = pyo3::types::PyDict::new(py);
    ns.set_item("__doc__", doc)?;
    ns.set_item("__module__", "hers")?;
    let class = py.get_type::<pyo3::types::PyType>().call1((name, bases, ns))?;
    m.add(name, class.clone())?;
    Ok(class)
}

/// Raises exception class `name` of this module with `message` (and `status` for server errors).
fn raise(name: &str, message: String, status: Option<u16>) -> PyErr {
    Python::attach(|py| {
        let made = (|| -> PyResult<PyErr> {
            let module = py.import("hers._hers")?;
            let class = module.getattr(name)?;
            let e = class.call1((message.clone(),))?;
            e.setattr("status", status.unwrap_or(0))?;
            Ok(PyErr::from_value(e))
        })();
        made.unwrap_or_else(|_| HersError::new_err(message))
    })
}

/// The exception for an error of the encrypted-search library.
pub fn search(e: encsearch::Error) -> PyErr {
    use encsearch::Error as E;
    let class = match &e {
        E::DimensionMismatch { .. }
        | E::NonFinite { .. }
        | E::ZeroNorm { .. }
        | E::InvalidArgument { .. }
        | E::InvalidParameters { .. }
        | E::PartlyEnrolled { .. }
        | E::TooMany { .. } => "InputError",
        E::DuplicateId { .. } | E::DuplicateInInput { .. } | E::AlreadyEnrolled { .. } => "DuplicateIdError",
        E::KeyMismatch { .. } => "KeyMismatchError",
        E::KeyPermissions { .. } => "HersError",
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "MissingFileError",
        E::UnknownId { .. } => "InputError",
        E::Server { .. } => "ServerError",
        _ => "GalleryError",
    };
    raise(class, e.to_string(), None)
}

/// The exception for an error of the service client.
pub fn service(e: service::Error) -> PyErr {
    use service::Error as E;
    match e {
        E::Search(e) => search(e),
        E::Http { status: 409, .. } => raise("DuplicateIdError", e.to_string(), Some(409)),
        E::Http { status, .. } => raise("ServerError", e.to_string(), Some(status)),
        E::Unreachable { .. } | E::Transport { .. } | E::GaveUp { .. } => {
            raise("UnreachableError", e.to_string(), None)
        }
        E::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            raise("MissingFileError", e.to_string(), None)
        }
        E::Config(_) => raise("InputError", e.to_string(), None),
        E::KeyMismatch(_) => raise("KeyMismatchError", e.to_string(), None),
        e => raise("HersError", e.to_string(), None),
    }
}

/// The exception for an error of the reduction library.
pub fn reduction(e: dimred::Error) -> PyErr {
    use dimred::Error as E;
    let class = match &e {
        E::InputDim { .. } | E::OutputDim { .. } | E::Data(_) => "InputError",
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "MissingFileError",
        _ => "HersError",
    };
    raise(class, e.to_string(), None)
}

/// An `InputError` with `message`.
pub fn input(message: impl Into<String>) -> PyErr {
    raise("InputError", message.into(), None)
}

/// A `MissingFileError` with `message`.
pub fn missing(message: impl Into<String>) -> PyErr {
    raise("MissingFileError", message.into(), None)
}
