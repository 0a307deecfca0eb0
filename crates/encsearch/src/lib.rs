//! Placeholder: the crate is being built (see issues 3 and 4).
