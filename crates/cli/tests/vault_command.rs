//! `nullgate vault deploy` and `nullgate vault show` on the embedded chain, as an operator
//! runs them.

use std::process::Command;

mod common;
use common::{anvil_path, json_of, nullgate};

#[test]
fn deploy_then_show_on_the_embedded_chain() {
    let dir = std::env::temp_dir().join(format!("nullgate-vault-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (snapshot, key) = (dir.join("chain.json"), dir.join("state-key.hex"));

    let deployed = json_of(
        nullgate()
            .args([
                "vault",
                "deploy",
                "--json",
                "--min-deposit",
                "2000",
                "--classes",
                "2,20,200",
            ])
            .arg("--snapshot")
            .arg(&snapshot)
            .arg("--state-key")
            .arg(&key),
    );
    assert_eq!(deployed["chain_id"], 31337);
    assert_eq!(deployed["min_deposit"], 2000);
    assert_eq!(deployed["cost_classes"], serde_json::json!([2, 20, 200]));
    assert_eq!(deployed["dev_keys"], true);
    // PROTOCOL §2's windows unless asked otherwise: W 72 h, G_exp 14 days, TTL 90 days.
    assert_eq!(deployed["exit_window"], 72 * 3_600);
    assert_eq!(deployed["expiry_grace"], 14 * 86_400);
    assert_eq!(deployed["note_lifetime"], 90 * 86_400);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the state key is readable by its owner only"
        );
    }

    // The saved chain answers for the same vault, with the same key.
    let address = deployed["address"].as_str().unwrap().to_string();
    let shown = json_of(
        nullgate()
            .args(["vault", "show", "--json", "--address", &address])
            .arg("--snapshot")
            .arg(&snapshot),
    );
    assert_eq!(shown["dom"], deployed["dom"]);
    assert_eq!(shown["current_key_point"], deployed["current_key_point"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_parameters_are_refused_with_the_reason() {
    let key = std::env::temp_dir().join(format!("nullgate-vault-bad-{}.hex", std::process::id()));
    let out = nullgate()
        .args(["vault", "deploy", "--classes", "5,3", "--state-key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cost classes: increasing"), "{stderr}");
    let _ = std::fs::remove_file(&key);

    // No key for the node: refused before anything is set up or written (here, in an empty
    // working directory).
    let empty = tempfile::tempdir().unwrap();
    let out = nullgate()
        .current_dir(empty.path())
        .env_remove("NULLGATE_PRIVATE_KEY")
        .args(["vault", "deploy", "--rpc-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NULLGATE_PRIVATE_KEY") && stderr.contains("--private-key-file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);

    // A private key is never taken on the command line (`ps` shows argv to everyone).
    let out = nullgate()
        .args([
            "vault",
            "deploy",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--private-key",
        ])
        .arg("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--private-key'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A key file that holds no key says so, and shows nothing of it.
    let file = std::env::temp_dir().join(format!("nullgate-bad-key-{}.hex", std::process::id()));
    std::fs::write(&file, "not-a-key-but-a-secret\n").unwrap();
    let out = nullgate()
        .args([
            "vault",
            "deploy",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--private-key-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not 32 bytes of hex"), "{stderr}");
    assert!(!stderr.contains("not-a-key-but-a-secret"));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn bad_pins_are_refused_before_anything_is_deployed() {
    let missing = std::env::temp_dir().join(format!("nullgate-no-prices-{}", std::process::id()));
    let refused = |extra: &[&str]| {
        let out = nullgate()
            .args(["vault", "deploy", "--state-key"])
            .arg(missing.with_extension("hex"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let path = missing.to_str().unwrap();
    let stderr = refused(&["--price-list", path]);
    assert!(stderr.contains("cannot read the price list"), "{stderr}");
    // The price list sets the classes and the floor fee: giving both is a contradiction.
    let stderr = refused(&["--price-list", path, "--classes", "1,2"]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let bad = missing.with_extension("txt");
    std::fs::write(&bad, "not a price list").unwrap();
    let stderr = refused(&["--price-list", bad.to_str().unwrap()]);
    assert!(stderr.contains("the price list"), "{stderr}");
    let _ = std::fs::remove_file(&bad);
    let stderr = refused(&["--ohttp-seed-env", "NULLGATE_TEST_UNSET_SEED"]);
    assert!(stderr.contains("set NULLGATE_TEST_UNSET_SEED"), "{stderr}");
    let stderr = std::process::Command::new(env!("CARGO_BIN_EXE_nullgate"))
        .env("NULLGATE_TEST_SHORT_SEED", "abcd")
        .args([
            "vault",
            "deploy",
            "--ohttp-seed-env",
            "NULLGATE_TEST_SHORT_SEED",
        ])
        .output()
        .unwrap();
    assert!(!stderr.status.success());
    let stderr = String::from_utf8_lossy(&stderr.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(
        !missing.with_extension("hex").exists(),
        "no state key was written"
    );
}

#[test]
fn the_dev_preset_shortens_the_windows_and_flags_override_it() {
    let key = std::env::temp_dir().join(format!("nullgate-vault-dev-{}.hex", std::process::id()));
    let deployed = json_of(
        nullgate()
            .args([
                "vault",
                "deploy",
                "--json",
                "--preset",
                "dev",
                "--exit-window",
                "7200",
            ])
            .arg("--state-key")
            .arg(&key),
    );
    assert_eq!(deployed["exit_window"], 7_200);
    assert_eq!(deployed["expiry_grace"], 86_400);
    assert_eq!(deployed["note_lifetime"], 30 * 86_400);
    let _ = std::fs::remove_file(&key);
}

/// anvil, killed when the test ends however it ends.
struct Anvil(std::process::Child);

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
fn deploy_then_show_over_json_rpc_on_anvil() {
    let anvil = anvil_path().expect("anvil was found at build time but not now");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let _anvil = Anvil(
        Command::new(anvil)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .args(["--slots-in-an-epoch", "1"])
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 30, "anvil did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let key = std::env::temp_dir().join(format!("nullgate-vault-rpc-{}.hex", std::process::id()));
    let deployed = json_of(
        nullgate()
            .args([
                "vault",
                "deploy",
                "--json",
                "--rpc-url",
                &url,
                "--dev-account",
                "0",
            ])
            .arg("--state-key")
            .arg(&key),
    );
    assert_eq!(deployed["chain_id"], 31337);
    let address = deployed["address"].as_str().unwrap().to_string();

    // Read back with anvil's first dev key given as a private key (the operator's usual path).
    let shown = json_of(
        nullgate()
            .args([
                "vault",
                "show",
                "--json",
                "--address",
                &address,
                "--rpc-url",
                &url,
            ])
            .env(
                "NULLGATE_PRIVATE_KEY",
                "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            ),
    );
    assert_eq!(shown["dom"], deployed["dom"]);
    assert_eq!(shown["address"], deployed["address"]);

    // Without a key an RPC deployment is refused with what to do.
    let out = nullgate()
        .args(["vault", "deploy", "--rpc-url", &url, "--state-key"])
        .arg(&key)
        .env_remove("NULLGATE_PRIVATE_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--private-key-file"));
    let _ = std::fs::remove_file(&key);
}
