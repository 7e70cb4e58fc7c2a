//! Placeholder: the browser tests come next.
