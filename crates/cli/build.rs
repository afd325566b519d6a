//! Sets `cfg(nullgate_anvil)` when anvil is installed (`$NULLGATE_ANVIL`, or
//! `contracts/node_modules/.bin/anvil` from `npm ci`), so the tests that drive it run
//! instead of being marked ignored. With `NULLGATE_REQUIRE_ANVIL=1` (as `.ci/run` sets for
//! its test run) a missing anvil fails the build, so CI cannot pass by skipping them.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(nullgate_anvil)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=NULLGATE_ANVIL");
    println!("cargo::rerun-if-env-changed=NULLGATE_REQUIRE_ANVIL");
    // `npm ci` in contracts/ changes the directory: look again then.
    println!("cargo::rerun-if-changed=../../contracts");
    let found = match std::env::var_os("NULLGATE_ANVIL") {
        Some(path) => Path::new(&path).exists(),
        None => Path::new("../../contracts/node_modules/.bin/anvil").exists(),
    };
    if found {
        println!("cargo::rustc-cfg=nullgate_anvil");
    } else if std::env::var_os("NULLGATE_REQUIRE_ANVIL").is_some_and(|v| v == "1") {
        eprintln!(
            "NULLGATE_REQUIRE_ANVIL=1 but anvil was not found: the anvil tests would be skipped. \
             Run `npm ci` in contracts/ (or set NULLGATE_ANVIL), or unset NULLGATE_REQUIRE_ANVIL."
        );
        std::process::exit(1);
    }
}
