//! # likely: a GPU likelihood engine
//!
//! Maximum-likelihood and MAP fits of likelihood families, evaluated by WGSL compute kernels
//! through wgpu (Vulkan, Metal, DX12) and checked against an f64 CPU reference.
//!
//! ```
//! use std::sync::Arc;
//! use likely::{engine::CpuEngine, family::{Bernoulli, Family}, fit};
//!
//! // 7 heads in 10 tosses: the MLE of p is 0.7.
//! let tosses: Arc<[f64]> = vec![1., 1., 1., 0., 1., 0., 1., 1., 0., 1.].into();
//! let mut engine = CpuEngine::new(Box::new(Bernoulli), tosses);
//! let result = fit::fit(&mut engine, &fit::FitOptions::default()).unwrap();
//! let p = likely::family::sigmoid(result.theta[0]);
//! assert!((p - 0.7).abs() < 1e-9 && result.converged);
//! ```

pub mod bench;
pub mod check;
pub mod data;
pub mod engine;
pub mod error;
pub mod family;
pub mod fit;
pub mod gpu;
pub mod inference;
pub mod linalg;
pub mod model;
pub mod special;
pub mod study;
pub mod tolerance;
pub mod util;

pub use error::{Error, Result};
