//! Sets `cfg(nullgate_anvil)` when anvil is installed, so the deploy-over-JSON-RPC test runs
//! against it instead of being marked ignored (see `build/detect.rs`).

include!("../../build/detect.rs");

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../../build/detect.rs");
    detect_anvil();
}
