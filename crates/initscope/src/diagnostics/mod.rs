//! Diagnostics: symmetry classes, gradient flow, activation statistics, spectra, mean field
//! (plain and residual), wake-up steps, the quotient network of a network of modules.
//! Each accumulates plain records; renderers only draw them.

pub mod flow;
pub mod meanfield;
pub mod meanfield_report;
pub mod meanfield_residual;
pub mod probe;
pub mod quotient;
pub mod spectrum;
pub mod symmetry;
pub mod verdict;
pub mod wake;
