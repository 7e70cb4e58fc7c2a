//! Integration tests of the engine, one module per theme.

mod architecture;
mod data_files;
mod determinism;
mod explain;
mod gradients;
mod initializers;
mod lanes;
mod learning;
mod live;
mod lockstep;
mod meanfield;
mod modules;
mod optimizers;
mod quotient;
mod report;
mod reproduce;
mod support;
mod symmetry;
mod torch_modules;
mod torch_parity;
mod wake;
mod weights_io;
