// Build-time detection of the outside programs some tests drive, shared by the build
// scripts of the crates that have such tests (`include!`d, so each stays a plain build.rs).
//
// Each function sets a `cfg` when its program is there, so the tests run instead of being
// marked ignored with the reason; with the matching `NULLGATE_REQUIRE_…=1` (as `.ci/run`
// sets) a missing program fails the build, so CI cannot pass by skipping them.

/// `cfg(nullgate_anvil)` when anvil is installed (`$NULLGATE_ANVIL`, or
/// `contracts/node_modules/.bin/anvil` from `npm ci`); `NULLGATE_REQUIRE_ANVIL=1` makes a
/// missing one an error.
#[allow(dead_code)]
fn detect_anvil() {
    println!("cargo::rustc-check-cfg=cfg(nullgate_anvil)");
    println!("cargo::rerun-if-env-changed=NULLGATE_ANVIL");
    println!("cargo::rerun-if-env-changed=NULLGATE_REQUIRE_ANVIL");
    // `npm ci` in contracts/ changes the directory: look again then.
    println!("cargo::rerun-if-changed=../../contracts");
    let found = match std::env::var_os("NULLGATE_ANVIL") {
        Some(path) => std::path::Path::new(&path).exists(),
        None => std::path::Path::new("../../contracts/node_modules/.bin/anvil").exists(),
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

/// `cfg(nullgate_postgres)` when `NULLGATE_POSTGRES_URL` names a PostgreSQL server (the URL
/// itself is read by the tests at run time and never printed here);
/// `NULLGATE_REQUIRE_POSTGRES=1` makes a missing URL an error.
#[allow(dead_code)]
fn detect_postgres() {
    println!("cargo::rustc-check-cfg=cfg(nullgate_postgres)");
    println!("cargo::rerun-if-env-changed=NULLGATE_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=NULLGATE_REQUIRE_POSTGRES");
    let url_set = std::env::var_os("NULLGATE_POSTGRES_URL").is_some_and(|url| !url.is_empty());
    if url_set {
        println!("cargo::rustc-cfg=nullgate_postgres");
    } else if std::env::var_os("NULLGATE_REQUIRE_POSTGRES").is_some_and(|v| v == "1") {
        eprintln!(
            "NULLGATE_REQUIRE_POSTGRES=1 but NULLGATE_POSTGRES_URL is not set: the PostgreSQL \
             tests would be skipped. Start a server (bash .ci/steps/05-postgres.sh) and set \
             NULLGATE_POSTGRES_URL, or unset NULLGATE_REQUIRE_POSTGRES."
        );
        std::process::exit(1);
    }
}
