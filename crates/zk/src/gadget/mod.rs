//! R1CS gadgets.
