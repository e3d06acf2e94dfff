//! Integration tests of tessera-core against outside references.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod oathtool;
