//! Sets `cfg(nullgate_postgres)` when `NULLGATE_POSTGRES_URL` is set, so the PostgreSQL half
//! of `tests/store_behaviour.rs` runs, and `cfg(nullgate_anvil)` when anvil is installed, so
//! the JSON-RPC upstream test runs; each is otherwise marked ignored with the reason (see
//! `build/detect.rs`).

include!("../../build/detect.rs");

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../../build/detect.rs");
    detect_postgres();
    detect_anvil();
}
