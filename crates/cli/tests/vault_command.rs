//! `nullgate vault deploy` and `nullgate vault show` on the embedded chain, as an operator
//! runs them.

use std::process::Command;

fn nullgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nullgate"))
}

#[test]
fn deploy_then_show_on_the_embedded_chain() {
    let dir = std::env::temp_dir().join(format!("nullgate-vault-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (snapshot, key) = (dir.join("chain.json"), dir.join("state-key.hex"));

    let out = nullgate()
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
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deployed["chain_id"], 31337);
    assert_eq!(deployed["min_deposit"], 2000);
    assert_eq!(deployed["cost_classes"], serde_json::json!([2, 20, 200]));
    assert_eq!(deployed["dev_keys"], true);
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
    let out = nullgate()
        .args(["vault", "show", "--json", "--address", &address])
        .arg("--snapshot")
        .arg(&snapshot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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

    let out = nullgate()
        .args(["vault", "deploy", "--rpc-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--private-key"));
}
