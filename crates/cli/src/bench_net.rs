//! `nullgate bench net`: transport figures of TARGETS.md, measured in one run.
//!
//! So far: Sphinx packet creation and per-hop processing (2 KiB payloads, 3 hops), packets
//! per second through one node's per-packet step on one core, OHTTP seal and open of a
//! request and its response in-process, and a full OHTTP round trip over real HTTP on
//! 127.0.0.1 (client → relay → gateway → upstream and back); and a mixnet round trip with zero
//! configured delay over the loopback mixnet (three nodes on 127.0.0.1, Noise links): the
//! request with a reply block through three layers, the reply through three layers again.
//! Then whole calls through the mixnet transport (`MixnetClient`: OHTTP-sealed, fragmented,
//! Poisson-paced, through an exit to a gateway, answered in reply blocks) over a loopback
//! mixnet of two nodes per layer, once with zero delays and once with the deployment
//! defaults (50 ms mean per hop, a packet every 20 ms, 20 ms mean exit delay).

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use bytes::Bytes;
use http::{Method, StatusCode};
use nullgate_net::{
    HttpRequest, HttpResponse, IsolationId, Transport,
    mixnet::{
        client::{GatewayKeys, MixnetClient, MixnetConfig},
        directory::Directory,
        epoch::EpochClock,
        harness::{Harness, HarnessConfig},
        node::EpochState,
        packet::{Hop, PacketFormat, Sphinx},
        server::Loopback,
    },
    ohttp::{
        GATEWAY_PATH, GatewayConfig, KeyRing, OhttpTransport, RelayConfig, gateway_router,
        relay_router,
    },
};
use serde::Serialize;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::{
    bench_zk::new_bar,
    stats::{peak_rss_mb, percentile_ms},
};

/// Options of `nullgate bench net`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// In-process seal-and-open round trips timed.
    #[arg(long, default_value_t = 2_000)]
    seals: usize,
    /// Loopback OHTTP requests timed.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Sphinx packets created and processed.
    #[arg(long, default_value_t = 2_000)]
    packets: usize,
    /// Mixnet round trips (six hops each) timed with zero configured delay.
    #[arg(long, default_value_t = 200)]
    round_trips: usize,
    /// Whole calls through the mixnet transport timed, per delay setting.
    #[arg(long, default_value_t = 30)]
    calls: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    sphinx_create_us_p50: f64,
    sphinx_hop_us_p50: f64,
    /// The bare `sphinx-packet` 0.8 hop (TARGETS.md's reference), same packets, same run.
    sphinx_hop_reference_us_p50: f64,
    /// Our hop over the reference: what the node adds to the crate's own work.
    sphinx_hop_vs_reference: f64,
    /// One X25519 key exchange (`x25519-dalek`); a Sphinx hop needs two.
    x25519_us_p50: f64,
    node_packets_per_s: f64,
    /// The node's step on all cores at once (threads sharing one replay cache).
    node_packets_per_s_all_cores: f64,
    /// Cores used for that figure.
    cores: usize,
    sphinx_payload_bytes: usize,
    ohttp_round_trip_us_p50: f64,
    ohttp_round_trip_us_p90: f64,
    ohttp_loopback_ms_p50: f64,
    ohttp_loopback_ms_p90: f64,
    mixnet_rtt_ms_p50_zero_delay: f64,
    mixnet_rtt_ms_p90_zero_delay: f64,
    mixnet_added_ms_per_hop_p50_zero_delay: f64,
    mixnet_call_ms_p50_zero_delay: f64,
    mixnet_call_ms_p90_zero_delay: f64,
    mixnet_call_ms_p50_default_delay: f64,
    mixnet_call_ms_p90_default_delay: f64,
    payload_bytes: usize,
    peak_rss_mb: f64,
}

const TARGET: &str = "provider.local:443";
const PAYLOAD: usize = 1024;

/// Runs the benchmark and prints the report.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seals >= 1
            && args.requests >= 1
            && args.packets >= 1
            && args.round_trips >= 1
            && args.calls >= 1,
        "counts must be at least 1"
    );
    let sphinx = sphinx_figures(&args)?;
    let keys = KeyRing::derive(
        1,
        b"nullgate bench net: ohttp key 01",
        Duration::from_secs(3600),
    )?;
    let transport = OhttpTransport::new(
        "http://127.0.0.1:9/".parse()?,
        &keys.served_body()?,
        Some(&keys.served_hash()?),
    )?;
    let request = sample_request();
    let response = HttpResponse {
        status: StatusCode::OK,
        headers: http::HeaderMap::new(),
        body: Bytes::from(vec![b'r'; PAYLOAD]),
        trailers: http::HeaderMap::new(),
    };

    // Seal a request, open it as the gateway, seal the response, open it as the client.
    let bar = new_bar(!args.json, "OHTTP seal and open", args.seals);
    let mut seal_times = Vec::with_capacity(args.seals);
    for _ in 0..args.seals {
        let started = Instant::now();
        let sealed = transport.seal(&request)?;
        let (_inner, sealer) = keys.open(&sealed.bytes, Instant::now())?;
        let answer = sealer.seal(&response)?;
        sealed.open_response(&answer)?;
        seal_times.push(started.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();

    let runtime = tokio::runtime::Runtime::new()?;
    let loopback = runtime.block_on(loopback(keys, &args))?;
    let mixnet = runtime.block_on(mixnet_round_trips(&args))?;
    let calls_zero = runtime.block_on(mixnet_calls(
        &args,
        MixnetConfig::loopback(),
        Duration::ZERO,
        "mixnet calls, zero delay",
    ))?;
    let calls_default = runtime.block_on(mixnet_calls(
        &args,
        MixnetConfig::deployment(),
        Duration::from_millis(20),
        "mixnet calls, default delays",
    ))?;
    let report = Report {
        sphinx_create_us_p50: sphinx.create_us_p50,
        sphinx_hop_us_p50: sphinx.hop_us_p50,
        sphinx_hop_reference_us_p50: sphinx.reference_hop_us_p50,
        sphinx_hop_vs_reference: sphinx.hop_us_p50 / sphinx.reference_hop_us_p50,
        x25519_us_p50: sphinx.x25519_us_p50,
        node_packets_per_s: sphinx.packets_per_s,
        node_packets_per_s_all_cores: sphinx.all_cores_packets_per_s,
        cores: sphinx.cores,
        sphinx_payload_bytes: SPHINX_PAYLOAD,
        ohttp_round_trip_us_p50: percentile_ms(&seal_times, 50) * 1000.0,
        ohttp_round_trip_us_p90: percentile_ms(&seal_times, 90) * 1000.0,
        ohttp_loopback_ms_p50: percentile_ms(&loopback, 50),
        ohttp_loopback_ms_p90: percentile_ms(&loopback, 90),
        mixnet_rtt_ms_p50_zero_delay: percentile_ms(&mixnet, 50),
        mixnet_rtt_ms_p90_zero_delay: percentile_ms(&mixnet, 90),
        mixnet_added_ms_per_hop_p50_zero_delay: percentile_ms(&mixnet, 50) / 6.0,
        mixnet_call_ms_p50_zero_delay: percentile_ms(&calls_zero, 50),
        mixnet_call_ms_p90_zero_delay: percentile_ms(&calls_zero, 90),
        mixnet_call_ms_p50_default_delay: percentile_ms(&calls_default, 50),
        mixnet_call_ms_p90_default_delay: percentile_ms(&calls_default, 90),
        payload_bytes: PAYLOAD,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("nullgate bench net (medians unless noted)");
        println!(
            "  Sphinx, {SPHINX_PAYLOAD}-byte payload   create (3 hops) {:>7.1} µs   one hop {:>7.1} µs   node {:>7.0} packets/s/core",
            report.sphinx_create_us_p50, report.sphinx_hop_us_p50, report.node_packets_per_s
        );
        println!(
            "  node, all {} cores at once {:>7.0} packets/s",
            report.cores, report.node_packets_per_s_all_cores
        );
        println!(
            "  same run: bare sphinx-packet hop {:>7.1} µs (ours {:.2}×)   one X25519 {:>6.1} µs (two per hop)",
            report.sphinx_hop_reference_us_p50,
            report.sphinx_hop_vs_reference,
            report.x25519_us_p50
        );
        println!(
            "  OHTTP seal + open, request and response  p50 {:>8.1} µs   p90 {:>8.1} µs",
            report.ohttp_round_trip_us_p50, report.ohttp_round_trip_us_p90
        );
        println!(
            "  OHTTP via relay and gateway, loopback     p50 {:>8.2} ms   p90 {:>8.2} ms",
            report.ohttp_loopback_ms_p50, report.ohttp_loopback_ms_p90
        );
        println!(
            "  mixnet round trip, 6 hops, zero delay     p50 {:>8.2} ms   p90 {:>8.2} ms   per hop {:>6.3} ms",
            report.mixnet_rtt_ms_p50_zero_delay,
            report.mixnet_rtt_ms_p90_zero_delay,
            report.mixnet_added_ms_per_hop_p50_zero_delay
        );
        println!(
            "  mixnet call (transport), zero delay       p50 {:>8.2} ms   p90 {:>8.2} ms",
            report.mixnet_call_ms_p50_zero_delay, report.mixnet_call_ms_p90_zero_delay
        );
        println!(
            "  mixnet call (transport), default delays   p50 {:>8.2} ms   p90 {:>8.2} ms",
            report.mixnet_call_ms_p50_default_delay, report.mixnet_call_ms_p90_default_delay
        );
        println!("  peak RSS {:>8.1} MB", report.peak_rss_mb);
    }
    Ok(())
}

const SPHINX_PAYLOAD: usize = 2048;

struct SphinxFigures {
    create_us_p50: f64,
    hop_us_p50: f64,
    packets_per_s: f64,
    reference_hop_us_p50: f64,
    x25519_us_p50: f64,
    all_cores_packets_per_s: f64,
    cores: usize,
}

/// Creates distinct 3-hop packets, then runs each through the first node's per-packet step
/// (replay check and one layer) on this thread alone. Interleaved with it, on the same
/// packets, the same-run references: the bare `sphinx-packet` hop TARGETS.md quotes and one
/// X25519 key exchange (a Sphinx hop does two), so noise from neighbours hits all three alike.
fn sphinx_figures(args: &Args) -> anyhow::Result<SphinxFigures> {
    let format = Sphinx::new(SPHINX_PAYLOAD);
    let keys: Vec<StaticSecret> = (1..=3u8).map(|i| StaticSecret::from([i; 32])).collect();
    let route: Vec<Hop> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Hop {
            address: [i as u8; 32],
            key: PublicKey::from(key),
        })
        .collect();
    let delays = [Duration::ZERO; 3];
    let message = vec![b'm'; SPHINX_PAYLOAD - 64];
    let bar = new_bar(!args.json, "Sphinx packets", args.packets);
    let mut create_times = Vec::with_capacity(args.packets);
    let mut packets = Vec::with_capacity(args.packets);
    for _ in 0..args.packets {
        let started = Instant::now();
        packets.push(format.create(&message, &route, [9; 32], &delays)?);
        create_times.push(started.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let node = EpochState::new(format, keys[0].clone());
    let mut hop_times = Vec::with_capacity(packets.len());
    let mut reference_times = Vec::with_capacity(packets.len());
    let mut x25519_times = Vec::with_capacity(packets.len());
    for packet in &packets {
        let hop = Instant::now();
        node.process(packet)
            .map_err(|e| anyhow::anyhow!("a fresh packet was dropped: {e}"))?;
        hop_times.push(hop.elapsed());

        let bare = Instant::now();
        let parsed = sphinx_packet::SphinxPacket::from_bytes(packet);
        let alpha = parsed.as_ref().ok().map(|p| p.header.shared_secret);
        let processed = parsed
            .and_then(|p| p.process(&keys[0]))
            .map_err(|e| anyhow::anyhow!("sphinx-packet refused a fresh packet: {e}"))?;
        reference_times.push(bare.elapsed());
        std::hint::black_box(processed);

        let alpha = alpha.ok_or_else(|| anyhow::anyhow!("a processed packet had no header"))?;
        let exchange = Instant::now();
        std::hint::black_box(keys[0].diffie_hellman(&alpha));
        x25519_times.push(exchange.elapsed());
    }
    // The same step on every core at once, as a running node runs it: one fresh replay cache
    // shared by all threads, the packets split between them.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let shared = EpochState::new(format, keys[0].clone());
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = packets
            .chunks(packets.len().div_ceil(cores))
            .map(|share| {
                let node = shared.clone();
                scope.spawn(move || share.iter().all(|packet| node.process(packet).is_ok()))
            })
            .collect();
        let all_opened = workers.into_iter().all(|w| w.join().unwrap_or(false));
        anyhow::ensure!(all_opened, "a fresh packet was dropped on a worker thread");
        Ok(())
    })?;
    let all_cores_packets_per_s = packets.len() as f64 / started.elapsed().as_secs_f64();
    Ok(SphinxFigures {
        all_cores_packets_per_s,
        cores,
        create_us_p50: percentile_ms(&create_times, 50) * 1000.0,
        hop_us_p50: percentile_ms(&hop_times, 50) * 1000.0,
        packets_per_s: packets_per_s(&hop_times),
        reference_hop_us_p50: percentile_ms(&reference_times, 50) * 1000.0,
        x25519_us_p50: percentile_ms(&x25519_times, 50) * 1000.0,
    })
}

/// A node's packets per second on one core: the median over windows of consecutive packets
/// (a burst from a noisy neighbour spoils a window, not the figure).
fn packets_per_s(hop_times: &[Duration]) -> f64 {
    const WINDOW: usize = 100;
    let mut rates: Vec<f64> = hop_times
        .chunks(WINDOW)
        .map(|window| window.len() as f64 / window.iter().sum::<Duration>().as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn sample_request() -> HttpRequest {
    let mut request = HttpRequest::new(Method::POST, "https", TARGET, "/v1/chat/completions");
    request.body = Bytes::from(vec![b'q'; PAYLOAD]);
    request
}

/// Client → relay → gateway → echo upstream, all on 127.0.0.1.
async fn loopback(keys: KeyRing, args: &Args) -> anyhow::Result<Vec<Duration>> {
    let body = keys.served_body()?;
    let gateway = echo_gateway(keys).await?;
    let relay = serve(relay_router(RelayConfig {
        gateway: format!("http://{gateway}{GATEWAY_PATH}").parse()?,
        max_request: 1 << 20,
    }))
    .await?;
    let transport = OhttpTransport::new(format!("http://{relay}/").parse()?, &body, None)?;
    timed_calls(
        &transport,
        args.requests,
        5,
        new_bar(!args.json, "OHTTP over loopback", args.requests + 5),
    )
    .await
}

/// An OHTTP gateway in front of an echo service on 127.0.0.1.
async fn echo_gateway(keys: KeyRing) -> anyhow::Result<std::net::SocketAddr> {
    let upstream = Router::new().route(
        "/v1/chat/completions",
        post(|body: Bytes| async move { body }),
    );
    serve(gateway_router(
        GatewayConfig {
            keys: Arc::new(RwLock::new(keys)),
            allowed_authorities: vec![TARGET.into()],
            max_request: 1 << 20,
            max_response: 1 << 20,
        },
        upstream,
    ))
    .await
}

/// Times `count` calls of the sample request through `transport` after `warmups` untimed
/// ones, checking each echo.
async fn timed_calls<T: Transport>(
    transport: &T,
    count: usize,
    warmups: usize,
    bar: indicatif::ProgressBar,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(count);
    for i in 0..count + warmups {
        let started = Instant::now();
        let response = transport
            .send(sample_request(), IsolationId::fresh())
            .await?;
        anyhow::ensure!(
            response.status == StatusCode::OK && response.body.len() == PAYLOAD,
            "the call answered {}",
            response.status
        );
        if i >= warmups {
            times.push(started.elapsed());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(times)
}

async fn serve(router: Router) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(address)
}

/// Round trips through the loopback mixnet with zero configured delay, after 5 warm-ups.
async fn mixnet_round_trips(args: &Args) -> anyhow::Result<Vec<Duration>> {
    let format = Sphinx::new(SPHINX_PAYLOAD);
    let mut net = Loopback::start(format, format.packet_size() + 64, 1).await?;
    let mut link = net.client_link().await?;
    let bar = new_bar(!args.json, "mixnet round trips", args.round_trips + 5);
    let mut times = Vec::with_capacity(args.round_trips);
    for i in 0..args.round_trips + 5 {
        let elapsed = tokio::time::timeout(
            Duration::from_secs(10),
            net.round_trip(&mut link, b"bench request", &[Duration::ZERO; 3]),
        )
        .await??;
        if i >= 5 {
            times.push(elapsed);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(times)
}

/// Whole calls through `MixnetClient` with `config`, over a loopback mixnet of two nodes per
/// layer whose exits wait `exit_delay` on average, to an OHTTP gateway; after 3 warm-ups.
async fn mixnet_calls(
    args: &Args,
    config: MixnetConfig,
    exit_delay: Duration,
    label: &'static str,
) -> anyhow::Result<Vec<Duration>> {
    let keys = KeyRing::derive(
        2,
        b"nullgate bench net: mixnet key 2",
        Duration::from_secs(3600),
    )?;
    let (body, hash) = (keys.served_body()?, keys.served_hash()?);
    let gateway = format!("http://{}", echo_gateway(keys).await?);
    let net = Harness::start(HarnessConfig {
        per_layer: 2,
        format: config.format,
        frame_len: config.frame_len,
        clients: 1,
        allowlist: vec![gateway.clone()],
        rpc_allowlist: Vec::new(),
        exit_delay,
        delay_cap: config.hop_delay_cap,
        seed: 2,
    })
    .await?;
    let directory = Directory::verify(
        net.signed_directory(),
        &net.authority(),
        EpochClock::now().as_secs(),
    )?;
    let key = net
        .client_key(0)
        .ok_or_else(|| anyhow::anyhow!("the harness has no client key"))?;
    let client = MixnetClient::connect(
        config,
        directory,
        key,
        &gateway,
        GatewayKeys::Known {
            body: &body,
            pinned_hash: Some(&hash),
        },
    )
    .await?;
    timed_calls(
        &client,
        args.calls,
        3,
        new_bar(!args.json, label, args.calls + 3),
    )
    .await
}
