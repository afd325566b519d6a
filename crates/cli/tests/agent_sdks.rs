//! The agent SDKs against `nullgate demo --serve` (chain, vault, gateway in front of the
//! example upstream, relay, wallet, proxy), each pointed at its proxy and checked for answer
//! and charge:
//!
//! - the official `openai` Python package (`base_url = …/v1`): chat completions unstreamed
//!   and streamed, the Responses API unstreamed and streamed, embeddings;
//! - the official `anthropic` package (`base_url` = the proxy's root): messages unstreamed
//!   and streamed;
//! - the `ollama` package (`host` = the proxy's root): the model list, chat unstreamed and
//!   streamed, generate;
//! - `curl`: one unstreamed and one streamed chat completion.
//!
//! The Python part needs `$NULLGATE_PYTHON`, a virtualenv with the three packages
//! (`.ci/steps/10-python.sh` makes one and `.ci/run` sets it); without it that part is skipped
//! with a message, unless `NULLGATE_REQUIRE_PYTHON_SDK` is set (CI), when its absence fails.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

mod common;
use common::nullgate;

/// How long the demo may take to print its proxy URL (it runs a DEV key setup first).
const STARTUP: Duration = Duration::from_secs(180);

/// The model the example upstream serves.
const MODEL: &str = "nullgate-example-1";

/// `nullgate demo --serve`, killed when the test ends however it ends.
struct Demo {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Demo {
    /// Starts the demo and waits for its `proxy listening on URL` line; returns it and the URL.
    fn start() -> (Self, String) {
        let mut child = nullgate()
            .args(["demo", "--serve", "--calls", "0", "--notes", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nullgate demo --serve");
        // Both pipes drained for as long as the demo runs, so it never blocks writing to them.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let (lines, line) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                let _ = lines.send(l);
            }
        });
        let mut demo = Self { child, stderr };
        let deadline = std::time::Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match line.recv_timeout(left) {
                Ok(l) => {
                    if let Some(url) = l.trim().strip_prefix("proxy listening on ") {
                        let url = url.trim_end_matches('/').to_string();
                        assert!(
                            url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
                            "unexpected proxy URL line: {l:?}"
                        );
                        return (demo, url);
                    }
                    eprintln!("demo stdout: {l}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "nullgate demo --serve printed no `proxy listening on` line in {STARTUP:?}; \
                     stderr:\n{}",
                    demo.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = demo.child.wait().unwrap();
                    // The stderr thread may still be copying the last of it.
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "nullgate demo --serve exited ({status}) before printing its proxy URL; \
                         stderr:\n{}",
                        demo.stderr()
                    );
                }
            }
        }
    }

    /// What the demo wrote to stderr so far.
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Fails the test if the demo is no longer running.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "nullgate demo --serve exited ({status}); stderr:\n{}",
                self.stderr()
            );
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$NULLGATE_PYTHON` if it names an executable file; `None` with a message otherwise. With
/// `NULLGATE_REQUIRE_PYTHON_SDK` set (CI) its absence fails.
fn python() -> Option<PathBuf> {
    let found = std::env::var_os("NULLGATE_PYTHON")
        .map(PathBuf::from)
        .filter(|path| is_executable(path));
    if found.is_none() {
        assert!(
            std::env::var_os("NULLGATE_REQUIRE_PYTHON_SDK").is_none(),
            "NULLGATE_REQUIRE_PYTHON_SDK is set but NULLGATE_PYTHON ({:?}) is not an executable",
            std::env::var_os("NULLGATE_PYTHON")
        );
        eprintln!(
            "SKIPPED: the openai SDK test needs NULLGATE_PYTHON (a virtualenv with openai; \
             .ci/steps/10-python.sh makes one)"
        );
    }
    found
}

fn is_executable(path: &std::path::Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// One response as `curl -sS -D -` prints it: the status, the headers (names lowercased) and
/// the body.
struct Curled {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Curled {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// POSTs `body` to `URL/chat/completions` with curl and splits what it prints.
fn curl_chat(url: &str, body: &serde_json::Value) -> Curled {
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "--max-time", "300"])
        .arg(format!("{url}/chat/completions"))
        .args(["-H", "content-type: application/json", "-d"])
        .arg(body.to_string())
        .output()
        .expect("run curl (is it installed? .ci/steps/10-python.sh installs it)");
    assert!(
        out.status.success(),
        "curl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = String::from_utf8(out.stdout).expect("the response is UTF-8");
    // Interim 1xx responses come first, each with its own blank line.
    loop {
        let (head, body) = rest
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header block in curl's output: {rest:?}"));
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"));
        if (100..200).contains(&status) {
            rest = body.to_string();
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Curled {
            status,
            headers,
            body: body.to_string(),
        };
    }
}

fn positive_integer(value: Option<&str>, what: &str) -> u64 {
    let value = value.unwrap_or_else(|| panic!("no {what}"));
    match value.parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => panic!("{what} is not a positive integer: {value:?}"),
    }
}

fn curl_unstreamed(url: &str) {
    let response = curl_chat(
        url,
        &serde_json::json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": "Say something short about rivers."}],
        }),
    );
    assert_eq!(response.status, 200, "unstreamed: {}", response.body);
    let charged = positive_integer(
        response.header("x-nullgate-charged"),
        "x-nullgate-charged header on the unstreamed response",
    );
    let class = response
        .header("x-nullgate-class")
        .expect("x-nullgate-class header on the unstreamed response");
    let completion: serde_json::Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("unstreamed: not JSON ({e}): {}", response.body));
    let answer = completion["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(!answer.is_empty(), "unstreamed: no answer in {completion}");
    assert!(
        completion["usage"]["total_tokens"].as_u64().unwrap_or(0) > 0,
        "unstreamed: no usage in {completion}"
    );
    println!(
        "curl unstreamed: {} chars, charged {charged}, class {class}",
        answer.len()
    );
}

fn curl_streamed(url: &str) {
    let response = curl_chat(
        url,
        &serde_json::json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": "Say something short about forests."}],
            "stream": true,
        }),
    );
    assert_eq!(response.status, 200, "streamed: {}", response.body);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "streamed: content-type {:?}",
        response.header("content-type")
    );
    assert!(
        !response.body.contains("nullgate-receipt"),
        "streamed: the gateway's receipt event reached the agent:\n{}",
        response.body
    );
    let data: Vec<&str> = response
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .collect();
    assert_eq!(
        data.last().copied(),
        Some("[DONE]"),
        "streamed: the stream does not end with `data: [DONE]`:\n{}",
        response.body
    );
    let mut text = String::new();
    for event in &data[..data.len() - 1] {
        let chunk: serde_json::Value = serde_json::from_str(event)
            .unwrap_or_else(|e| panic!("streamed: a data event is not JSON ({e}): {event}"));
        if let Some(delta) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(delta);
        }
    }
    assert!(!text.is_empty(), "streamed: no text in\n{}", response.body);
    println!(
        "curl streamed: {} chunks, {} chars, charged {:?}",
        data.len() - 1,
        text.len(),
        response.header("x-nullgate-charged")
    );
}

/// Runs `tests/sdk/<script>` with `arg`; its one-line JSON summary.
fn run_script(python: &std::path::Path, script: &str, arg: &str, demo: &Demo) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let out = Command::new(python)
        .arg(&path)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} {script} {arg} failed ({}):\nstdout: {stdout}\nstderr: {}\ndemo stderr:\n{}",
        python.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        demo.stderr()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON summary ({e}): {stdout}"));
    println!("{script}: {summary}");
    summary
}

/// `summary[a][b]…` as a positive integer, or the test fails naming it.
fn charged(summary: &serde_json::Value, path: &[&str]) -> u64 {
    let value = path.iter().fold(summary, |v, key| &v[key]);
    match value.as_u64() {
        Some(n) if n > 0 => n,
        _ => panic!("{} is not a positive charge in {summary}", path.join(".")),
    }
}

#[test]
fn agent_sdks_and_curl_through_the_demo_proxy() {
    // Looked up first: under NULLGATE_REQUIRE_PYTHON_SDK its absence fails before the demo starts.
    let python = python();
    let (mut demo, url) = Demo::start();
    let root = url.trim_end_matches("/v1");
    println!("demo proxy at {url}");

    if let Some(python) = python {
        let openai = run_script(&python, "openai_check.py", &url, &demo);
        for call in ["unstreamed", "responses", "embeddings"] {
            charged(&openai, &[call, "charged"]);
        }
        let anthropic = run_script(&python, "anthropic_check.py", root, &demo);
        for call in ["unstreamed", "streamed"] {
            charged(&anthropic, &[call, "charged"]);
        }
        let ollama = run_script(&python, "ollama_check.py", root, &demo);
        charged(&ollama, &["charged"]);
        assert!(
            ollama["chat_streamed"]["parts"].as_u64().unwrap_or(0) > 1,
            "{ollama}"
        );
    }
    demo.assert_running();

    curl_unstreamed(&url);
    curl_streamed(&url);
    demo.assert_running();
}
