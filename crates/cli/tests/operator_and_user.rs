//! The path a real deployment takes, each role its own `nullgate` process on a real node
//! (anvil): the operator runs `setup`, `vault deploy` (pinning the price list and the OHTTP
//! key), `gateway` and `relay`; the user runs `wallet new`, `wallet deposit` and `proxy`, once
//! over the OHTTP relay and once over SOCKS5 (a SOCKS5 server started by the test stands in
//! for Tor), and pays for a chat completion through each (over OHTTP an Anthropic message and
//! an Ollama chat too), then restores the wallet from its secrets and from a copy of its
//! backup. A second operator sells its node's JSON-RPC methods: a JSON-RPC client reads the
//! chain through the proxy over OHTTP, then over a mixnet of separate processes, which also
//! carries the proxy's own chain reads.

mod common;
#[path = "../../net/tests/common/socks_server.rs"]
mod socks_server;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Children, anvil_path, free_ports, fresh_dir, json_of, metric, nullgate};
use nullgate_chain::{CHAIN_SOCKS_USER, Finality, Ledger, RpcLedger, RpcRoute};
use nullgate_net::mixnet::authority::AuthoritySettings;
use nullgate_protocol::price::{MethodPrices, PriceList, Pricing, Route};
use socks_server::{Tunnels, socks_server};

/// anvil's dev account 0 (the public test mnemonic): the operator, who also slashes.
const OPERATOR_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The gateway's count of receipt look-ups (its `/metrics`).
const RECEIPT_LOOKUPS: &str = "nullgate_gateway_receipt_lookups_total";
/// The path the JSON-RPC test's price list sells the node's methods under.
const RPC_PATH: &str = "/";
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

/// Once the proxy pays (see [`pay_for_a_chat`]): an Anthropic message (not streamed) and an
/// Ollama chat (streamed as NDJSON, Ollama's default) through it, each answered and charged.
async fn pay_through_anthropic_and_ollama(proxy: &str) {
    let client = reqwest::Client::new();
    let question = [serde_json::json!({"role": "user", "content": "Name a river."})];
    let response = client
        .post(format!("{proxy}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({
            "model": nullgate_example_llm::DEFAULT_MODEL,
            "max_tokens": 32,
            "messages": question,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let charged = response.headers().get("x-nullgate-charged").cloned();
    let message: serde_json::Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message", "{message}");
    assert!(!message["content"][0]["text"].as_str().unwrap().is_empty());
    assert!(charged.unwrap().to_str().unwrap().parse::<u64>().unwrap() > 0);

    let response = client
        .post(format!("{proxy}/api/chat"))
        .json(&serde_json::json!({
            "model": nullgate_example_llm::DEFAULT_MODEL,
            "messages": question,
            "options": {"num_predict": 32},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{text}");
    assert_eq!(lines.last().unwrap()["done"], true, "{text}");
    assert!(
        lines.iter().any(|l| !l["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .is_empty()),
        "{text}"
    );
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

/// What the operator runs, on a chain of its own.
struct Operator {
    /// The node's JSON-RPC URL.
    rpc: String,
    anvil_port: u16,
    /// The vault's address.
    vault: String,
    /// The gateway's authority (`127.0.0.1:port`).
    gateway: String,
    gateway_port: u16,
    relay_port: u16,
}

/// Starts anvil (a block a second, `finalized` two below the head), then the operator's
/// part: `setup --dev`, a vault pinning `prices` and the OHTTP key, `nullgate gateway` in
/// front of `upstream` (the node itself when `None`) and `nullgate relay` before it.
fn operate(
    children: &mut Children,
    dir: &Path,
    prices: &PriceList,
    upstream: Option<&str>,
) -> Operator {
    let anvil_port = free_port();
    let rpc = format!("http://127.0.0.1:{anvil_port}");
    let mut anvil = Command::new(anvil_path().expect("anvil was found at build time but not now"));
    anvil.args(["--port", &anvil_port.to_string()]).args([
        "--slots-in-an-epoch",
        "1",
        "--block-time",
        "1",
    ]);
    start(children, anvil, &dir.join("anvil.log"), "");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", anvil_port)).is_err() {
        assert!(Instant::now() < deadline, "anvil does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Keys, the price list, the vault pinning both and the OHTTP key.
    run(nullgate()
        .args(["setup", "--dev", "--quiet", "--out"])
        .arg(dir.join("keys")));
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

    let gateway_port = free_port();
    let gateway = format!("127.0.0.1:{gateway_port}");
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "listen = \"{gateway}\"\nupstream = \"{}\"\nrpc_url = \"{rpc}\"\nvault = \"{vault}\"\n\
             [limits]\npoll_ms = 200\n",
            upstream.unwrap_or(&rpc)
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
        children,
        command,
        &dir.join("gateway.log"),
        "nullgate gateway on",
    );
    let relay_port = free_port();
    let mut command = nullgate();
    command
        .args(["relay", "--listen", &format!("127.0.0.1:{relay_port}")])
        .args(["--gateway", &format!("http://{gateway}/ohttp")]);
    start(children, command, &dir.join("relay.log"), "OHTTP relay on");
    Operator {
        rpc,
        anvil_port,
        vault,
        gateway,
        gateway_port,
        relay_port,
    }
}

/// The user's part: `wallet new` (unencrypted) and `wallet deposit` of `amount` in `notes`
/// notes from anvil's dev account 1, usable at once (the test is its own anonymity set).
fn new_wallet(dir: &Path, rpc: &str, vault: &str, amount: u64, notes: u32) {
    let wallet = |verb: &str| {
        let mut command = nullgate();
        command
            .args(["wallet", verb, "--rpc-url", rpc, "--dev-account", "1"])
            .arg("--wallet")
            .arg(dir.join("wallet"));
        command
    };
    run(wallet("new").args(["--vault", vault, "--unencrypted"]));
    run(wallet("deposit")
        .args(["--amount", &amount.to_string()])
        .args(["--notes", &notes.to_string(), "--first-use-delay", "0"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn an_operator_serves_a_vault_and_a_user_pays_through_ohttp_and_socks5() {
    let dir = fresh_dir("operator");
    let mut children = Children(Vec::new());
    let prices = nullgate_gateway::dev::demo_price_list();
    // The paid API, and the operator's gateway in front of it.
    let example = nullgate_example_llm::start(Default::default())
        .await
        .unwrap();
    let Operator {
        rpc,
        anvil_port,
        vault,
        gateway,
        gateway_port,
        relay_port,
    } = operate(
        &mut children,
        &dir,
        &prices,
        Some(example.base_url().as_str()),
    );
    // The user: a wallet with two notes.
    new_wallet(&dir, &rpc, &vault, 2 * prices.max_class(), 2);

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
    pay_through_anthropic_and_ollama(&proxy).await;
    // The proxy holds the wallet's lock: stop it before the next one opens the wallet.
    // Three paid calls: their states written (after the answers) before the proxy stops.
    wait_until_settled(&dir.join("wallet"), 3).await;
    let mut first = children.0.pop().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    // A copy of the wallet's backup as it is now, for `restore --backup` below.
    std::fs::copy(
        dir.join("wallet/wallet.json.bak"),
        dir.join("wallet-copy.json"),
    )
    .unwrap();

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

    wait_until_settled(&dir.join("wallet"), 4).await;
    let mut second = children.0.pop().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();

    // Restoring over the relay: from the secrets alone, each note's receipts walked from its
    // deposit; and from the copy, each walked from the state the copy holds.
    let states = |wallet: &str| -> Vec<(u64, u64)> {
        let status = json_of(
            nullgate()
                .args(["wallet", "status", "--json", "--rpc-url", &rpc])
                .arg("--wallet")
                .arg(dir.join(wallet)),
        );
        status["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["balance"].as_u64().unwrap(), n["index"].as_u64().unwrap()))
            .collect()
    };
    let spent = states("wallet");
    assert!(
        spent.iter().map(|(_, index)| index).sum::<u64>() >= 2,
        "{spent:?}"
    );
    let secrets = run(nullgate()
        .args(["wallet", "secrets", "--wallet"])
        .arg(dir.join("wallet")));
    std::fs::write(dir.join("secrets.txt"), secrets).unwrap();
    let copy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("wallet-copy.json")).unwrap()).unwrap();
    let copied_indices: Vec<u64> = copy["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"]["index"].as_u64().unwrap())
        .collect();
    let restore = |into: &str, from: (&str, &str)| {
        run(nullgate()
            .args(["wallet", "restore", "--rpc-url", &rpc, "--vault", &vault])
            .args(["--relay", &format!("http://127.0.0.1:{relay_port}/")])
            .args(["--gateway", &gateway, "--max-pause", "0s", "--unencrypted"])
            .args([from.0, from.1])
            .arg("--wallet")
            .arg(dir.join(into)));
    };
    // One look-up per receipt and one that finds the next index unknown, per note.
    let before = metric(&gateway, RECEIPT_LOOKUPS).await;
    restore(
        "from-secrets",
        ("--secrets", &dir.join("secrets.txt").to_string_lossy()),
    );
    let lookups = metric(&gateway, RECEIPT_LOOKUPS).await - before;
    assert_eq!(states("from-secrets"), spent);
    let walked: u64 = spent.iter().map(|(_, index)| index + 1).sum();
    assert_eq!(lookups, walked);
    let before = metric(&gateway, RECEIPT_LOOKUPS).await;
    restore(
        "from-copy",
        ("--backup", &dir.join("wallet-copy.json").to_string_lossy()),
    );
    let lookups = metric(&gateway, RECEIPT_LOOKUPS).await - before;
    assert_eq!(states("from-copy"), spent);
    assert!(copied_indices.iter().sum::<u64>() >= 1, "{copy}");
    assert_eq!(lookups, walked - copied_indices.iter().sum::<u64>());
    // As the proxy reaches the gateway: `proxy.toml` is the SOCKS5 one now.
    let tunnels_before = tunnels.lock().unwrap().len();
    run(nullgate()
        .args(["wallet", "restore", "--rpc-url", &rpc, "--vault", &vault])
        .arg("--proxy-config")
        .arg(dir.join("proxy.toml"))
        .args(["--gateway", &gateway, "--max-pause", "0s", "--unencrypted"])
        .arg("--secrets")
        .arg(dir.join("secrets.txt"))
        .arg("--wallet")
        .arg(dir.join("through-socks")));
    assert_eq!(states("through-socks"), spent);
    let seen = tunnels.lock().unwrap().clone();
    let lookups_through_socks = seen[tunnels_before..]
        .iter()
        .filter(|t| t.target == format!("localhost:{gateway_port}"))
        .count();
    assert_eq!(
        lookups_through_socks as u64, walked,
        "one tunnel per look-up: {seen:?}"
    );

    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn a_json_rpc_client_reads_a_real_node_through_the_proxy_and_pays_per_method() {
    let dir = fresh_dir("rpc");
    let mut children = Children(Vec::new());
    // An operator selling reads of its Ethereum node, priced per method.
    let methods = [
        ("eth_blockNumber", 20),
        ("eth_chainId", 10),
        ("eth_getBlockByNumber", 40),
    ];
    let prices = PriceList::new(
        vec![100, 1_000],
        5,
        vec!["content-type".into()],
        vec![Route {
            method: "POST".into(),
            path: RPC_PATH.into(),
            pricing: Pricing::JsonRpc(
                MethodPrices::new(methods.iter().map(|(m, p)| (m.to_string(), *p)).collect())
                    .unwrap(),
            ),
        }],
    )
    .unwrap();
    let operator = operate(&mut children, &dir, &prices, None);
    new_wallet(
        &dir,
        &operator.rpc,
        &operator.vault,
        2 * prices.max_class(),
        1,
    );
    // Given no key, the wallet reads the node but refuses to deposit, changing nothing.
    let wallet_file = || std::fs::read(dir.join("wallet/wallet.json")).unwrap();
    let before = wallet_file();
    let out = nullgate()
        .env_remove("NULLGATE_PRIVATE_KEY")
        .args(["wallet", "deposit", "--rpc-url", &operator.rpc])
        .args(["--amount", "1000", "--notes", "1", "--wallet"])
        .arg(dir.join("wallet"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("NULLGATE_PRIVATE_KEY"),
        "{stderr}"
    );
    assert_eq!(wallet_file(), before);
    let status = json_of(
        nullgate()
            .env_remove("NULLGATE_PRIVATE_KEY")
            .args(["wallet", "status", "--json", "--rpc-url", &operator.rpc])
            .arg("--wallet")
            .arg(dir.join("wallet")),
    );
    assert_eq!(status["notes"].as_array().unwrap().len(), 1, "{status}");
    let log = dir.join("proxy.log");
    let proxy = start_proxy(
        &mut children,
        &dir,
        (&operator.rpc, &operator.vault, &operator.gateway),
        &format!(
            "kind = \"ohttp\"\nrelay = \"http://127.0.0.1:{}/\"",
            operator.relay_port
        ),
        &log,
    );
    let endpoint = format!("{proxy}{RPC_PATH}");

    // A batch, its ids chosen by the caller: the node's answers come back under them, and the
    // charge is the sum of the methods' prices.
    let block = pay_for_a_batch(&endpoint, &log).await;
    assert!(block > 0);

    // A real JSON-RPC client (alloy, under nullgate's own read-only ledger) pointed at the
    // proxy as at any node: its answers are the node's.
    let through_proxy =
        RpcLedger::read_only(&endpoint, Finality::FinalizedTag, RpcRoute::Direct).unwrap();
    let direct =
        RpcLedger::read_only(&operator.rpc, Finality::FinalizedTag, RpcRoute::Direct).unwrap();
    assert_eq!(
        through_proxy.chain_id().await.unwrap(),
        direct.chain_id().await.unwrap()
    );
    let finalized = through_proxy.finalized().await.unwrap();
    assert!(finalized.number <= direct.latest().await.unwrap().number);

    // A method the price list does not price is refused by the proxy and costs nothing.
    let unpriced = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"});
    let response = reqwest::Client::new()
        .post(&endpoint)
        .json(&unpriced)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("x-nullgate-charged").is_none());
    let mut ohttp = children.0.pop().unwrap();
    ohttp.kill().unwrap();
    ohttp.wait().unwrap();

    // Over the mixnet (separate processes: the authority and one node per layer), the calls
    // and the proxy's own chain reads alike: the exit counts both.
    let base = free_ports(4);
    let mixnet = dir.join("mixnet");
    run(nullgate()
        .args(["mixnet", "init", "--base-port", &base.to_string()])
        .args(["--allow", &format!("http://{}", operator.gateway)])
        .args(["--allow-rpc", &operator.rpc, "--delay-cap-ms", "50"])
        .arg("--dir")
        .arg(&mixnet));
    let mut command = nullgate();
    command
        .arg("directory")
        .arg("--config")
        .arg(mixnet.join("directory.json"));
    start(&mut children, command, &dir.join("directory.log"), "");
    let exit_metrics = free_port();
    for layer in 0..3 {
        let mut command = nullgate();
        command
            .arg("mixnode")
            .arg("--config")
            .arg(mixnet.join(format!("node-{layer}-0.json")));
        if layer == 2 {
            command.args(["--metrics", &format!("127.0.0.1:{exit_metrics}")]);
        }
        // Each node waits for the others to appear in the directory: all start at once.
        start(
            &mut children,
            command,
            &dir.join(format!("mixnode-{layer}.log")),
            "",
        );
    }
    for layer in 0..3 {
        let log = dir.join(format!("mixnode-{layer}.log"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("mix node of layer")
        {
            assert!(
                Instant::now() < deadline,
                "mix node {layer} did not join:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let settings: AuthoritySettings =
        serde_json::from_slice(&std::fs::read(mixnet.join("directory.json")).unwrap()).unwrap();
    let log = dir.join("proxy-mixnet.log");
    let proxy = start_proxy(
        &mut children,
        &dir,
        (&operator.rpc, &operator.vault, &operator.gateway),
        &format!(
            "kind = \"mixnet\"\nauthority = \"http://{}\"\nauthority_key = \"{}\"\n\
             gateway_url = \"http://{}\"",
            settings.listen,
            hex::encode(settings.verifying_key().as_bytes()),
            operator.gateway
        ),
        &log,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("chain reads go through the mixnet"), "{text}");
    assert!(pay_for_a_batch(&format!("{proxy}{RPC_PATH}"), &log).await >= block);
    let exit = format!("127.0.0.1:{exit_metrics}");
    let reads = metric(&exit, "nullgate_exit_rpc_calls_total").await;
    assert!(reads >= 3, "the proxy's chain reads: {reads}");
    let fetches = metric(&exit, "nullgate_exit_key_fetches_total").await;
    assert!(fetches >= 1, "{fetches}");
    let calls = metric(&exit, "nullgate_exit_gateway_calls_total").await;
    assert!(calls >= 1, "the paid batch: {calls}");

    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends a batch (`eth_chainId`, `eth_blockNumber`, ids the caller's own) to the proxy's
/// JSON-RPC route until it answers 200 (the deposit becomes final a few blocks after it is
/// mined); checks the answers and the charge (10 + 20) and returns the block number.
async fn pay_for_a_batch(endpoint: &str, log: &Path) -> u64 {
    let batch = serde_json::json!([
        {"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "latest-block", "method": "eth_blockNumber", "params": []},
    ]);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (charged, answers) = loop {
        let response = client.post(endpoint).json(&batch).send().await.unwrap();
        let status = response.status();
        let charged = response.headers().get("x-nullgate-charged").cloned();
        let body = response.text().await.unwrap();
        if status == 200 {
            break (
                charged,
                serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "the proxy still answers {status}: {body}\nproxy log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(charged.unwrap(), "30");
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{answers:?}");
    let by_id = |id: serde_json::Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer with id {id} in {answers:?}"))["result"]
            .clone()
    };
    assert_eq!(by_id(7.into()), "0x7a69", "anvil's chain id, 31337");
    let block = by_id("latest-block".into());
    u64::from_str_radix(block.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Waits until the unencrypted wallet in `dir` holds `calls` receipted states in all (the
/// proxy writes a state just after it answers).
async fn wait_until_settled(dir: &Path, calls: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let settled = std::fs::read(dir.join("wallet.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .map(|wallet| {
                wallet["notes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["state"]["index"].as_u64())
                    .sum::<u64>()
            });
        if settled == Some(calls) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the wallet holds {settled:?} receipted states, not {calls}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
