//! The path a real deployment takes, each role its own `nullgate` process on a real node
//! (anvil): the operator runs `setup`, `vault deploy` (pinning the price list and the OHTTP
//! key), `gateway` and `relay`; the user runs `wallet new`, `wallet deposit` and `proxy`, once
//! over the OHTTP relay and once over SOCKS5 (a SOCKS5 server started by the test stands in
//! for Tor), and pays for a chat completion through each.

mod common;
#[path = "../../net/tests/common/socks_server.rs"]
mod socks_server;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Children, anvil_path, json_of, nullgate};
use nullgate_chain::CHAIN_SOCKS_USER;
use socks_server::{Tunnels, socks_server};

/// anvil's dev account 0 (the public test mnemonic): the operator, who also slashes.
const OPERATOR_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The gateway's OHTTP key seed (hex, 32 bytes): the operator's secret.
const OHTTP_SEED: &str = "4f48545450207365656420666f7220746865206f70657261746f722074657374";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `command` to success and returns its standard output.
fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `command` with its standard error in `log` and waits until the log shows
/// `ready` (or the process dies, or a minute passes).
fn start(children: &mut Children, mut command: Command, log: &Path, ready: &str) {
    let file = std::fs::File::create(log).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(ready) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{command:?} exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "{command:?} did not print {ready:?} in a minute:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    children.0.push(child);
}

/// Asks the proxy for a chat completion until it answers 200 (the deposit becomes final a
/// few blocks after it is mined), and checks the answer and its charge.
async fn pay_for_a_chat(proxy: &str, log: &Path) -> u64 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let response = client
            .post(format!("{proxy}/v1/chat/completions"))
            .json(&serde_json::json!({
                "model": nullgate_example_llm::DEFAULT_MODEL,
                "messages": [{"role": "user", "content": "Say something short about rivers."}],
                "max_tokens": 32,
            }))
            .send()
            .await;
        if let Ok(response) = response {
            let status = response.status();
            let charged = response
                .headers()
                .get("x-nullgate-charged")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = response.text().await.unwrap_or_default();
            if status == 200 {
                let completion: serde_json::Value = serde_json::from_str(&body).unwrap();
                let answer = completion["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default();
                assert!(!answer.is_empty(), "no answer in {completion}");
                let charged = charged.expect("a paid answer says what it cost");
                assert!(charged > 0);
                return charged;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy still answers {status}: {body}\nproxy log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes `proxy.toml` for `transport` and starts `nullgate proxy` on a free port, its log in
/// `log`; returns the proxy's base URL.
fn start_proxy(
    children: &mut Children,
    dir: &Path,
    (rpc, vault, gateway): (&str, &str, &str),
    transport: &str,
    log: &Path,
) -> String {
    let listen = free_port();
    std::fs::write(
        dir.join("proxy.toml"),
        format!(
            "wallet = \"wallet\"\nrpc_url = \"{rpc}\"\nvault = \"{vault}\"\n\
             gateway = \"{gateway}\"\nrequest_proving_key = \"keys/request.pk\"\n\
             min_anonymity = 0\nsync_ms = 500\n\
             [proxy]\nlisten = \"127.0.0.1:{listen}\"\n\
             [transport]\n{transport}\n"
        ),
    )
    .unwrap();
    let mut command = nullgate();
    command
        .arg("proxy")
        .arg("--config")
        .arg(dir.join("proxy.toml"));
    start(children, command, log, "nullgate proxy on");
    format!("http://127.0.0.1:{listen}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn an_operator_serves_a_vault_and_a_user_pays_through_ohttp_and_socks5() {
    let dir = std::env::temp_dir().join(format!("nullgate-operator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut children = Children(Vec::new());

    // The chain: a block a second, `finalized` two below the head.
    let anvil_port = free_port();
    let rpc = format!("http://127.0.0.1:{anvil_port}");
    let mut anvil = Command::new(anvil_path().expect("anvil was found at build time but not now"));
    anvil.args(["--port", &anvil_port.to_string()]).args([
        "--slots-in-an-epoch",
        "1",
        "--block-time",
        "1",
    ]);
    start(&mut children, anvil, &dir.join("anvil.log"), "");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", anvil_port)).is_err() {
        assert!(Instant::now() < deadline, "anvil does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The operator: keys, the price list, the vault pinning both and the OHTTP key.
    run(nullgate()
        .args(["setup", "--dev", "--quiet", "--out"])
        .arg(dir.join("keys")));
    let prices = nullgate_gateway::dev::demo_price_list();
    std::fs::write(dir.join("price-list.txt"), prices.to_bytes()).unwrap();
    let deployed = json_of(
        nullgate()
            .env("NULLGATE_OHTTP_SEED", OHTTP_SEED)
            .args([
                "vault",
                "deploy",
                "--json",
                "--rpc-url",
                &rpc,
                "--dev-account",
                "0",
            ])
            .args(["--ohttp-seed-env", "NULLGATE_OHTTP_SEED", "--preset", "dev"])
            .args(["--min-deposit", &prices.max_class().to_string()])
            .arg("--keys")
            .arg(dir.join("keys"))
            .arg("--price-list")
            .arg(dir.join("price-list.txt"))
            .arg("--state-key")
            .arg(dir.join("state-key.hex")),
    );
    let vault = deployed["address"].as_str().unwrap().to_string();

    // The paid API, and the gateway in front of it.
    let example = nullgate_example_llm::start(Default::default())
        .await
        .unwrap();
    let gateway_port = free_port();
    let gateway = format!("127.0.0.1:{gateway_port}");
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "listen = \"{gateway}\"\nupstream = \"{}\"\nrpc_url = \"{rpc}\"\nvault = \"{vault}\"\n\
             [limits]\npoll_ms = 200\n",
            example.base_url()
        ),
    )
    .unwrap();
    let state_key = std::fs::read_to_string(dir.join("state-key.hex")).unwrap();
    let mut command = nullgate();
    command
        .env("NULLGATE_STATE_KEY", state_key.trim())
        .env("NULLGATE_OHTTP_SEED", OHTTP_SEED)
        .env("NULLGATE_PRIVATE_KEY", OPERATOR_KEY)
        .arg("gateway")
        .arg("--config")
        .arg(dir.join("gateway.toml"));
    start(
        &mut children,
        command,
        &dir.join("gateway.log"),
        "nullgate gateway on",
    );
    let relay_port = free_port();
    let mut command = nullgate();
    command
        .args(["relay", "--listen", &format!("127.0.0.1:{relay_port}")])
        .args(["--gateway", &format!("http://{gateway}/ohttp")]);
    start(
        &mut children,
        command,
        &dir.join("relay.log"),
        "OHTTP relay on",
    );

    // The user: a wallet with two notes.
    let wallet = |verb: &str| {
        let mut command = nullgate();
        command
            .args(["wallet", verb, "--rpc-url", &rpc, "--dev-account", "1"])
            .arg("--wallet")
            .arg(dir.join("wallet"));
        command
    };
    run(wallet("new").args(["--vault", &vault, "--unencrypted"]));
    let amount = (2 * prices.max_class()).to_string();
    // Used at once: the test is its own anonymity set.
    run(wallet("deposit").args([
        "--amount",
        &amount,
        "--notes",
        "2",
        "--first-use-delay",
        "0",
    ]));

    // Over the OHTTP relay.
    let chain = (rpc.as_str(), vault.as_str(), gateway.as_str());
    let log = dir.join("proxy-ohttp.log");
    let proxy = start_proxy(
        &mut children,
        &dir,
        chain,
        &format!("kind = \"ohttp\"\nrelay = \"http://127.0.0.1:{relay_port}/\""),
        &log,
    );
    assert!(pay_for_a_chat(&proxy, &log).await > 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("calls leave through ohttp"), "{text}");
    // The proxy holds the wallet's lock: stop it before the next one opens the wallet.
    let mut first = children.0.pop().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();

    // Over SOCKS5: calls and chain reads both through the proxy, each on its own username.
    let tunnels: Tunnels = Arc::new(Mutex::new(Vec::new()));
    let socks = socks_server(tunnels.clone()).await;
    let log = dir.join("proxy-socks5.log");
    let proxy = start_proxy(
        &mut children,
        &dir,
        chain,
        &format!(
            "kind = \"socks5\"\nsocks = \"{socks}\"\ngateway_url = \"http://localhost:{gateway_port}\""
        ),
        &log,
    );
    assert!(pay_for_a_chat(&proxy, &log).await > 0);
    let seen = tunnels.lock().unwrap().clone();
    let to_gateway: Vec<_> = seen
        .iter()
        .filter(|t| t.target == format!("localhost:{gateway_port}"))
        .collect();
    assert!(
        !to_gateway.is_empty(),
        "calls went through SOCKS5: {seen:?}"
    );
    assert!(to_gateway.iter().all(|t| t.user != CHAIN_SOCKS_USER));
    assert!(
        seen.iter()
            .any(|t| t.target == format!("127.0.0.1:{anvil_port}") && t.user == CHAIN_SOCKS_USER),
        "chain reads went through SOCKS5 on their own username: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|t| t.target == format!("localhost:{gateway_port}")
                || t.target == format!("127.0.0.1:{anvil_port}")),
        "nothing else: {seen:?}"
    );

    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
}
