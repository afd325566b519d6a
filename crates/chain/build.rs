//! Sets `cfg(nullgate_anvil)` when anvil is installed, so the RpcLedger tests run against
//! it instead of being marked ignored (see `build/detect.rs`).

include!("../../build/detect.rs");

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../../build/detect.rs");
    detect_anvil();
}
