//! The circuits.
