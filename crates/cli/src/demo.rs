//! `nullgate demo`: one machine, every part real. DEV keys, the embedded chain with a
//! vault, a gateway in front of an OpenAI-compatible upstream (the example server, or
//! `--upstream`), an OHTTP relay, a wallet that deposits and splits into notes, the proxy,
//! and an agent loop sending chat calls through the proxy, some concurrent, some streamed.
//! It ends with a table (or `--json`): calls, credits against caps, proof times, latency,
//! and what the gateway stored.

use std::{
    io::Write,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nullgate_protocol::price::TokenPrices;
use serde::Serialize;

use crate::stack::{self, Stack, StackOptions};

/// Options of `nullgate demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Chat calls the agent makes.
    #[arg(long, default_value_t = 12)]
    calls: usize,
    /// Notes the deposit is split into (one request in flight per note).
    #[arg(long, default_value_t = 3)]
    notes: usize,
    /// Calls in flight at once (at most the number of notes is useful).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Every how many calls one is streamed (0: none).
    #[arg(long, default_value_t = 3)]
    stream_every: usize,
    /// Credits per note.
    #[arg(long, default_value_t = 100_000)]
    deposit: u64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// After the agent loop, keep everything running and print the proxy's URL: point your
    /// own agent's OpenAI base URL at it (Anthropic's and Ollama's at the same without
    /// `/v1`).
    #[arg(long)]
    serve: bool,
    /// After the agent loop, serve the proxy's calls as MCP tools on stdio (for an agent
    /// host, or a test driving one); the summary goes to stderr, stdout carries MCP only.
    #[arg(long, conflicts_with_all = ["serve", "json"])]
    mcp: bool,
    /// A real OpenAI-compatible upstream (Ollama, llama.cpp, vLLM, a hosted API), e.g.
    /// `http://127.0.0.1:11434/v1`, instead of the example server.
    #[arg(long)]
    upstream: Option<String>,
    /// Environment variable holding the upstream's API key.
    #[arg(long)]
    upstream_key_env: Option<String>,
    /// The model the agent asks for (default: the upstream's first model).
    #[arg(long)]
    model: Option<String>,
    /// Keep the gateway's database and the wallet here (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One agent call as measured.
#[derive(Debug, Clone, Serialize)]
struct Call {
    streamed: bool,
    status: u16,
    ms: f64,
    charged: u64,
    class_cost: u64,
}

/// The summary (`--json`).
#[derive(Debug, Serialize)]
struct Summary {
    dev_keys: bool,
    calls: usize,
    answered: usize,
    streamed: usize,
    receipts_verified: u64,
    credits_charged: u64,
    upstream_usage_priced: Option<u64>,
    charge_equals_usage: Option<bool>,
    calls_above_cap: usize,
    class_caps: Vec<u64>,
    proofs: usize,
    proof_ms_p50: f64,
    pregenerated_share: f64,
    critical_path_us_p50: f64,
    latency_ms_p50: f64,
    direct_ms_p50: Option<f64>,
    gateway_records: u64,
    gateway_reservations: u64,
    gateway_tables: Vec<String>,
    notes: Vec<(u64, u32)>,
    /// Active, unexpired notes in the vault (PROTOCOL §9; the demo's threshold is off).
    anonymity_set: Option<usize>,
    seconds: f64,
    dir: String,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[sorted.len() / 2]
}

/// The `max_tokens` of every agent call.
const MAX_TOKENS: u64 = 64;

const PROMPTS: [&str; 6] = [
    "Summarise the causes of the French revolution in two sentences.",
    "What is a zero-knowledge proof, for a ten year old?",
    "Give me three names for a lighthouse keeper's cat.",
    "How do I convert Celsius to Fahrenheit?",
    "Write a haiku about mixnets.",
    "Which is heavier, a kilogram of feathers or a kilogram of lead?",
];

/// Runs the demo.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo(args))
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    anyhow::ensure!(args.notes > 0, "--notes must be at least 1");
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let quiet = args.json;
    let say = |text: &str| {
        if !quiet {
            eprintln!("{text}");
        }
    };
    say("nullgate demo: DEV keys (anyone can forge proofs under them: never for real money)");

    let key = match &args.upstream_key_env {
        Some(var) => Some(
            std::env::var(var).with_context(|| format!("--upstream-key-env: {var} is not set"))?,
        ),
        None => None,
    };
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| nullgate_example_llm::DEFAULT_MODEL.to_owned());
    let typical_body = PROMPTS
        .iter()
        .map(|p| chat_body(&model, p, true).to_string().len())
        .max()
        .unwrap_or(0);
    let stack = stack::start(&StackOptions {
        notes: args.notes,
        deposit: args.deposit,
        upstream: args.upstream.clone(),
        upstream_key: key,
        dir: dir.clone(),
        quiet,
        typical_body,
        max_tokens: MAX_TOKENS,
    })
    .await?;
    let Stack {
        dev,
        example,
        upstream_url,
        store,
        client,
        trusted,
        proxy_url,
        ..
    } = &stack;
    // The agent loop.
    let calls = agent(proxy_url, &model, &args, quiet).await?;

    // What the upstream reported, before the reference calls below add to it.
    let upstream_counters = example.as_ref().map(|e| e.counters());

    // Reference: the same kind of call straight to the upstream.
    let direct_ms = if example.is_some() && !calls.is_empty() {
        let mut samples = Vec::new();
        for i in 0..calls.len().clamp(1, 8) {
            let start = Instant::now();
            let _ = reqwest::Client::new()
                .post(format!("{upstream_url}/chat/completions"))
                .json(&chat_body(&model, PROMPTS[i % PROMPTS.len()], false))
                .send()
                .await?
                .bytes()
                .await?;
            samples.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Some(median(&samples))
    } else {
        None
    };

    client.settled(Duration::from_secs(30)).await;
    let stats = client.stats();
    let (records, reservations) = store.counts().await?;
    let usage_priced = upstream_counters.map(|counters| {
        let TokenPrices {
            input: prompt,
            output: completion,
            ..
        } = dev
            .price_list
            .route("POST", "/v1/chat/completions")
            .and_then(|route| route.pricing.tokens())
            .expect("the demo prices chat by tokens");
        counters.prompt_tokens * prompt + counters.completion_tokens * completion
    });
    let charged: u64 = calls.iter().map(|c| c.charged).sum();
    let summary = Summary {
        dev_keys: trusted.deployment.dev_keys,
        calls: calls.len(),
        answered: calls.iter().filter(|c| c.status == 200).count(),
        streamed: calls.iter().filter(|c| c.streamed).count(),
        receipts_verified: stats.receipts,
        credits_charged: charged,
        upstream_usage_priced: usage_priced,
        charge_equals_usage: usage_priced.map(|u| u == charged && stats.charged == charged),
        calls_above_cap: calls.iter().filter(|c| c.charged > c.class_cost).count(),
        class_caps: dev.price_list.classes().to_vec(),
        proofs: usize::try_from(stats.proof_ms.total()).unwrap_or(usize::MAX),
        proof_ms_p50: median(&stats.proof_ms.values()),
        pregenerated_share: if calls.is_empty() {
            0.0
        } else {
            stats.pregenerated_used as f64
                / (stats.pregenerated_used + stats.proved_on_demand).max(1) as f64
        },
        critical_path_us_p50: median(&stats.critical_path_us.values()),
        latency_ms_p50: median(&calls.iter().map(|c| c.ms).collect::<Vec<_>>()),
        direct_ms_p50: direct_ms,
        gateway_records: records,
        gateway_reservations: reservations,
        gateway_tables: store.schema().await?.into_iter().map(|(t, _)| t).collect(),
        notes: client
            .notes()
            .iter()
            .map(|n| (n.state.balance, n.state.index))
            .collect(),
        anonymity_set: client.anonymity_set(),
        seconds: started.elapsed().as_secs_f64(),
        dir: dir.display().to_string(),
    };
    if args.mcp {
        eprintln!(
            "nullgate demo: {} calls made; serving MCP on stdio",
            calls.len()
        );
        return crate::mcp::serve_stdio(client.clone(), Default::default()).await;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_table(&summary, &calls);
    }
    if args.serve {
        println!("proxy listening on {proxy_url}");
        std::io::stdout().flush()?;
        std::future::pending::<()>().await;
    }
    drop(temp);
    Ok(())
}

fn chat_body(model: &str, prompt: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    })
}

/// The agent: `--calls` chat calls through the proxy, `--concurrency` at a time.
async fn agent(
    proxy_url: &str,
    model: &str,
    args: &Args,
    quiet: bool,
) -> anyhow::Result<Vec<Call>> {
    let bar = if quiet || args.calls == 0 {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.calls as u64).with_style(
            ProgressStyle::with_template("agent calls [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        )
    };
    let http = reqwest::Client::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let streamed = args.stream_every > 0 && i % args.stream_every == args.stream_every - 1;
        let body = chat_body(model, PROMPTS[i % PROMPTS.len()], streamed);
        let permit = semaphore.clone().acquire_owned().await?;
        let http = http.clone();
        let url = format!("{proxy_url}/chat/completions");
        let bar = bar.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let response = http.post(url).json(&body).send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (charged, class_cost) = (header("x-nullgate-charged"), header("x-nullgate-class"));
            let text = response.text().await?;
            drop(permit);
            bar.inc(1);
            anyhow::ensure!(status == 200, "call {i} answered {status}: {text}");
            if streamed {
                anyhow::ensure!(
                    text.contains("data: [DONE]"),
                    "call {i}: the stream did not end with [DONE]"
                );
            }
            Ok::<_, anyhow::Error>(Call {
                streamed,
                status,
                ms: start.elapsed().as_secs_f64() * 1e3,
                charged,
                class_cost,
            })
        }));
    }
    let mut calls = Vec::new();
    for task in tasks {
        calls.push(task.await??);
    }
    bar.finish_and_clear();
    Ok(calls)
}

fn print_table(s: &Summary, calls: &[Call]) {
    let caps = s
        .class_caps
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ");
    let rows: Vec<(&str, String)> = vec![
        (
            "keys",
            if s.dev_keys {
                "DEV (forgeable: local demo only)".into()
            } else {
                "pinned".into()
            },
        ),
        (
            "calls answered",
            format!("{} of {} ({} streamed)", s.answered, s.calls, s.streamed),
        ),
        (
            "receipts verified by the client",
            s.receipts_verified.to_string(),
        ),
        ("credits charged", s.credits_charged.to_string()),
        (
            "upstream usage × price list",
            match (s.upstream_usage_priced, s.charge_equals_usage) {
                (Some(u), Some(true)) => format!("{u} (equal)"),
                (Some(u), _) => format!("{u} (DIFFERS)"),
                _ => "n/a (external upstream)".into(),
            },
        ),
        ("calls above their class cap", s.calls_above_cap.to_string()),
        ("cost classes", caps),
        ("charge per call (min / median / max)", {
            let charges: Vec<f64> = calls.iter().map(|c| c.charged as f64).collect();
            let min = charges.iter().copied().fold(f64::INFINITY, f64::min);
            let max = charges.iter().copied().fold(0.0, f64::max);
            if charges.is_empty() {
                "-".into()
            } else {
                format!("{min} / {} / {max}", median(&charges))
            }
        }),
        (
            "proofs made (p50)",
            format!("{} ({:.0} ms)", s.proofs, s.proof_ms_p50),
        ),
        (
            "calls served by a pre-generated credential",
            format!("{:.0}%", s.pregenerated_share * 100.0),
        ),
        (
            "client critical path (sign + fsynced journal), p50",
            format!("{:.2} ms", s.critical_path_us_p50 / 1e3),
        ),
        (
            "call latency through proxy → relay → gateway, p50",
            format!("{:.1} ms", s.latency_ms_p50),
        ),
        (
            "the same call straight to the upstream, p50",
            s.direct_ms_p50
                .map_or("n/a".into(), |d| format!("{d:.1} ms")),
        ),
        (
            "gateway rows (final / reserved)",
            format!("{} / {}", s.gateway_records, s.gateway_reservations),
        ),
        ("gateway tables", s.gateway_tables.join(", ")),
        (
            "notes (balance @ index)",
            s.notes
                .iter()
                .map(|(b, m)| format!("{b}@{m}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "anonymity set",
            format!(
                "{} notes (the threshold is off: this chain has one user)",
                s.anonymity_set
                    .map_or("not synced".to_owned(), |n| n.to_string())
            ),
        ),
        ("total time", format!("{:.1} s", s.seconds)),
    ];
    let rows: Vec<(&str, String)> = rows
        .into_iter()
        .map(|(k, v)| (k, if v.contains("NaN") { "-".into() } else { v }))
        .collect();
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let line = "-".repeat(width + 40);
    println!("{line}");
    for (key, value) in rows {
        println!("{key:<width$}  {value}");
    }
    println!("{line}");
}
