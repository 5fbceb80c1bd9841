//! tam-connectors: adapters of the ports in `tam_core::ports`, one module per system.
//!
//! Today: [`embedded`], the zero-configuration channels that keep everything on this machine.
//! **Invariant:** every adapter classifies its own failures into an `Outcome`; none retries on
//! its own (the dispatcher owns retries) and none sends customer-facing mail.

pub mod embedded;
