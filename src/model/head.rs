//! The output head of a conditional model: each family's row likelihood given its outputs
//! is defined beside the family ([`crate::family::head`]).

pub use crate::family::head::{Conditional, Head};
