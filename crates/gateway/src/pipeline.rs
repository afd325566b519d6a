//! The paid route handler: PROTOCOL §6 steps 1–7 in the spec's order.

use std::{convert::Infallible, pin::Pin, sync::Arc, task::Poll, time::Instant};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::Frame;
use nullgate_protocol::{
    price::{RequestPrice, TokenApi, TokenPrices},
    receipt::{RECEIPT_HEADER, Receipt},
    rejection::{PROBLEM_MEDIA_TYPE, Rejection},
};
use tokio::sync::mpsc;

use crate::{
    charge::Receipted,
    fault::{self, FaultPoint},
    metrics::{Outcome, Stage},
    service::Shared,
    store::{Known, Reservation, Reserved, StoredResponse},
    stream::{self, Relayed, SseRelay},
    upstream::{ChatRequest, allowlisted},
    usage,
    verify::Presented,
};

/// A refusal as the peer sees it: status, problem document, challenge, `Retry-After`, and
/// the receipt where the answer consumed the nullifier.
pub(crate) fn refusal(rejection: &Rejection, receipt: Option<&Receipt>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_MEDIA_TYPE),
    );
    if let Some(challenge) = rejection.challenge()
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(seconds) = rejection.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(receipt) = receipt
        && let Ok(value) = HeaderValue::from_str(&receipt.to_header())
    {
        headers.insert(RECEIPT_HEADER, value);
    }
    let status =
        StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, rejection.problem_body()).into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "gateway failure (charged 0)");
    refusal(&Rejection::Internal, None)
}

/// The request's parts the pipeline reads, after the body was read within the limit.
struct Incoming {
    method: http::Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Every priced route lands here.
pub(crate) async fn paid(shared: Arc<Shared>, request: Request<Body>) -> Response {
    let started = Instant::now();
    let metrics = shared.metrics.clone();
    let response = handle(shared, request).await;
    metrics.observe(Stage::Request, started.elapsed());
    response
}

/// Steps 1–7 for one request.
async fn handle(shared: Arc<Shared>, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let limit = shared.limits.max_request_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => return refusal(&Rejection::BodyTooLarge { limit }, None),
    };
    let incoming = Incoming {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        headers: parts.headers,
        body,
    };
    let tree = shared.tree_view();
    if !tree.healthy {
        return refusal(&Rejection::Unavailable("the chain watcher is behind"), None);
    }
    if let Some(why) = tree.stopped {
        return refusal(&Rejection::Unavailable(why), None);
    }
    // Step 1: parse with hard limits.
    let presented = match Presented::parse(
        incoming
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
        incoming.method.as_str(),
        &incoming.path_and_query,
        &incoming.headers,
        &incoming.body,
        &shared.prices,
    ) {
        Ok(presented) => presented,
        Err(rejection) => {
            shared.metrics.count(Outcome::Refused);
            return refusal(&rejection, None);
        }
    };
    fault::reached(FaultPoint::Parsed);
    // Step 2: look N up before any freshness check.
    let started = Instant::now();
    let known = shared.store.lookup(&presented.nullifier()).await;
    shared.metrics.observe(Stage::Lookup, started.elapsed());
    let known = match known {
        Ok(known) => known,
        Err(error) => return internal(error),
    };
    if let Some(known) = known {
        return known_nullifier(&shared, &tree, presented, known).await;
    }
    fault::reached(FaultPoint::LookedUp);
    // Step 3: verify (CPU-bound, batched with concurrent requests, off the async threads).
    let verified = {
        let started = Instant::now();
        let verified = shared
            .verify_queue
            .verify(&shared, presented, tree.clone())
            .await;
        match verified {
            Ok(Ok(verified)) => {
                shared.metrics.observe(Stage::Verify, started.elapsed());
                fault::reached(FaultPoint::Verified);
                verified
            }
            Ok(Err(rejection)) => {
                shared.metrics.observe(Stage::Verify, started.elapsed());
                shared.metrics.count(Outcome::Invalid);
                return refusal(&rejection, None);
            }
            // Shed (every slot and the queue taken), or the gateway failed.
            Err(rejection) => return refusal(&rejection, None),
        }
    };
    // Step 4: reserve N atomically.
    let started = Instant::now();
    let reserved = shared.store.reserve(&verified, shared.limits.lease()).await;
    shared.metrics.observe(Stage::Reserve, started.elapsed());
    let reserved = match reserved {
        Ok(Reservation::Reserved(reserved)) => {
            fault::reached(FaultPoint::Reserved);
            reserved
        }
        // A concurrent request reserved N between the look-up and here: step 2 again, so
        // a racing second request key is caught as the double spend it is.
        Ok(Reservation::Taken) => {
            let presented = verified.presented().clone();
            return match shared.store.lookup(&presented.nullifier()).await {
                Ok(Some(known)) => known_nullifier(&shared, &tree, presented, known).await,
                Ok(None) => refusal(&Rejection::InProgress, None),
                Err(error) => internal(error),
            };
        }
        Err(error) => return internal(error),
    };
    // From here every answer consumes N and carries a receipt.
    let hour = verified.presented().credential.body.hour;
    if hour.abs_diff(tree.finalized_hour) > shared.limits.hour_skew {
        return refuse_charged(&shared, reserved, &Rejection::StaleHour).await;
    }
    let price = verified.presented().price;
    execute(shared, reserved, price, incoming).await
}

/// Step 2 for a nullifier the store knows.
async fn known_nullifier(
    shared: &Arc<Shared>,
    tree: &crate::watcher::TreeView,
    presented: Presented,
    known: Known,
) -> Response {
    let (share, digest) = match &known {
        Known::Blocked => {
            shared.metrics.count(Outcome::DoubleSpend);
            return refusal(&Rejection::DoubleSpend, None);
        }
        Known::Reserved {
            share,
            payload_digest,
            ..
        }
        | Known::Final {
            share,
            payload_digest,
            ..
        } => (*share, *payload_digest),
        // An exit's index: a request there is a second share on the note's line.
        Known::Exit { share } => (*share, None),
    };
    let body = &presented.credential.body;
    if share.x != presented.share_x {
        // A double spend: two request keys at one index.
        shared.metrics.count(Outcome::DoubleSpend);
        let second = crate::store::Share {
            x: presented.share_x,
            y: body.share_y,
        };
        if let Err(error) = shared
            .slasher
            .caught(share, second, tree, &shared.store, &shared.metrics)
            .await
        {
            return internal(error);
        }
        return refusal(&Rejection::DoubleSpend, None);
    }
    if share.y != body.share_y || !presented.signature_holds() {
        shared.metrics.count(Outcome::Refused);
        return refusal(&Rejection::Conflict, None);
    }
    let same_payload = digest.is_none_or(|d| d == presented.payload_digest);
    match known {
        Known::Final {
            receipt, response, ..
        } => {
            if !same_payload {
                shared.metrics.count(Outcome::Refused);
                return refusal(&Rejection::SecondPayload, Some(&receipt));
            }
            shared.metrics.count(Outcome::Retry);
            match response {
                Some(stored) => stored_response(&stored, &receipt),
                None => refusal(&Rejection::ResponseExpired, Some(&receipt)),
            }
        }
        Known::Reserved { lease_expired, .. } => {
            if !same_payload || !lease_expired {
                return refusal(&Rejection::InProgress, None);
            }
            // The gateway that reserved it is gone, perhaps after forwarding it: finish it
            // as the retry it is, with a receipt, and never run it a second time.
            match shared
                .store
                .take_over(&presented.nullifier(), shared.limits.lease())
                .await
            {
                Ok(Some(reserved)) => {
                    refuse_charged(shared, reserved, &Rejection::Interrupted).await
                }
                Ok(None) => refusal(&Rejection::InProgress, None),
                Err(error) => internal(error),
            }
        }
        // Same x as an exit's x_e: no request key hashes there; refuse it all the same.
        Known::Exit { .. } => refusal(&Rejection::Conflict, None),
        Known::Blocked => unreachable!("handled above"),
    }
}

fn stored_response(stored: &StoredResponse, receipt: &Receipt) -> Response {
    let mut response = Response::new(Body::from(stored.body.clone()));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if let Some(kind) = stored
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    if let Ok(value) = HeaderValue::from_str(&receipt.to_header()) {
        headers.insert(RECEIPT_HEADER, value);
    }
    response
}

/// Charges `raw`, signs, persists with `response`: steps 5–6 minus the forwarding.
async fn settle(
    shared: &Shared,
    reserved: Reserved,
    raw: u64,
    response: &StoredResponse,
) -> Result<Receipted, crate::store::StoreError> {
    let started = Instant::now();
    let receipted = reserved
        .charge(&shared.prices, raw)
        .sign(&shared.deployment.dom, &shared.signer);
    let finished = shared.store.finish(&receipted, response).await;
    shared.metrics.observe(Stage::Settle, started.elapsed());
    finished?;
    fault::reached(FaultPoint::Settled);
    shared.metrics.charged(receipted.receipt().charge);
    Ok(receipted)
}

/// A refusal after reservation: the floor fee, a receipt, and the reason (403).
async fn refuse_charged(shared: &Shared, reserved: Reserved, rejection: &Rejection) -> Response {
    let stored = StoredResponse {
        status: rejection.status(),
        content_type: Some(PROBLEM_MEDIA_TYPE.into()),
        body: rejection.problem_body(),
    };
    match settle(shared, reserved, 0, &stored).await {
        Ok(receipted) => {
            shared.metrics.count(Outcome::Refused);
            refusal(rejection, Some(receipted.receipt()))
        }
        Err(error) => internal(error),
    }
}

/// Step 5 onward: forward, price, receipt, persist, respond.
async fn execute(
    shared: Arc<Shared>,
    reserved: Reserved,
    price: RequestPrice,
    incoming: Incoming,
) -> Response {
    let headers = allowlisted(&incoming.headers, shared.prices.signed_headers());
    // An OpenAI chat stream is asked to end with its usage.
    let chat = match price {
        RequestPrice::Tokens(TokenPrices {
            api: TokenApi::OpenAiChat,
            ..
        }) => ChatRequest::prepare(&incoming.body),
        _ => None,
    };
    let (body, client_wants_usage) = match &chat {
        Some(chat) => (chat.body.clone(), chat.client_wants_usage),
        None => (incoming.body.clone(), false),
    };
    let started = Instant::now();
    let answer = shared
        .upstream
        .send(
            incoming.method.clone(),
            &incoming.path_and_query,
            headers,
            body,
        )
        .await;
    let mut answer = match answer {
        Ok(answer) => {
            fault::reached(FaultPoint::Forwarded);
            answer
        }
        Err(error) => {
            shared.metrics.upstream(true);
            tracing::warn!(%error, "upstream unreachable (charged the floor fee)");
            return refuse_charged(&shared, reserved, &Rejection::Upstream).await;
        }
    };
    let status = answer.status();
    shared.metrics.upstream(!status.is_success());
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_stream = content_type
        .as_deref()
        .is_some_and(|kind| kind.starts_with("text/event-stream"));
    if let RequestPrice::Tokens(prices) = price
        && is_stream
        && status.is_success()
    {
        shared.metrics.observe(Stage::Upstream, started.elapsed());
        return relay_stream(
            shared,
            reserved,
            prices,
            answer,
            content_type,
            client_wants_usage,
        );
    }
    let max = shared.limits.max_response_bytes;
    let mut collected = Vec::new();
    let mut too_large = false;
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) if collected.len() + chunk.len() <= max => {
                collected.extend_from_slice(&chunk)
            }
            Ok(Some(_)) => {
                too_large = true;
                break;
            }
            Ok(None) => break,
            Err(_) => {
                // The upstream broke off: charged the floor fee as a failure.
                return refuse_charged(&shared, reserved, &Rejection::Upstream).await;
            }
        }
    }
    shared.metrics.observe(Stage::Upstream, started.elapsed());
    if too_large {
        // The upstream did the work; the answer cannot be kept or relayed.
        let cap = reserved.class_cost();
        let stored = StoredResponse {
            status: Rejection::Upstream.status(),
            content_type: Some(PROBLEM_MEDIA_TYPE.into()),
            body: Rejection::Upstream.problem_body(),
        };
        return match settle(&shared, reserved, cap, &stored).await {
            Ok(receipted) => refusal(&Rejection::Upstream, Some(receipted.receipt())),
            Err(error) => internal(error),
        };
    }
    // Charge: a failure costs the floor fee; success is priced by the route.
    let raw = if !status.is_success() {
        0
    } else {
        match price {
            RequestPrice::Known(credits) => credits,
            RequestPrice::Tokens(prices) => serde_json::from_slice::<serde_json::Value>(&collected)
                .ok()
                .and_then(|value| usage::of_answer(prices.api, &value))
                // A successful answer without usage is charged its cap.
                .map_or(reserved.class_cost(), |usage| prices.price(usage)),
        }
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type,
        body: crate::timestamps::coarsen(&collected).into_owned(),
    };
    match settle(&shared, reserved, raw, &stored).await {
        Ok(receipted) => {
            shared.metrics.count(Outcome::Paid);
            stored_response(&stored, receipted.receipt())
        }
        Err(error) => internal(error),
    }
}

/// A response body fed by a channel: data frames, then the trailers.
struct ChannelBody(mpsc::Receiver<Frame<Bytes>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// Relays an SSE stream as it arrives; the receipt follows the body (trailer and event).
fn relay_stream(
    shared: Arc<Shared>,
    reserved: Reserved,
    prices: TokenPrices,
    mut answer: reqwest::Response,
    content_type: Option<String>,
    client_wants_usage: bool,
) -> Response {
    let (sender, receiver) = mpsc::channel::<Frame<Bytes>>(32);
    let cap = reserved.class_cost();
    let stored_type = content_type.clone();
    tokio::spawn(async move {
        let mut relay = SseRelay::new(prices, cap, client_wants_usage);
        let mut sent: Vec<u8> = Vec::new();
        let max = shared.limits.max_response_bytes;
        let forward = |events: Vec<Bytes>, sent: &mut Vec<u8>| {
            let frames: Vec<Bytes> = events
                .into_iter()
                .filter(|event| {
                    let fits = sent.len() + event.len() <= max;
                    if fits {
                        sent.extend_from_slice(event);
                    }
                    fits
                })
                .collect();
            frames
        };
        while let Ok(Some(chunk)) = answer.chunk().await {
            match relay.push(&chunk) {
                Ok(Relayed::Forward(events)) => {
                    for frame in forward(events, &mut sent) {
                        // A client that went away still gets charged what it consumed.
                        let _ = sender.send(Frame::data(frame)).await;
                    }
                }
                Ok(Relayed::CutOff(events)) => {
                    for frame in forward(events, &mut sent) {
                        let _ = sender.send(Frame::data(frame)).await;
                    }
                    shared.metrics.cut_off();
                    break;
                }
                Err(_) => break,
            }
        }
        if !relay.was_cut_off()
            && let Some(last) = relay.finish()
        {
            for frame in forward(vec![last], &mut sent) {
                let _ = sender.send(Frame::data(frame)).await;
            }
        }
        if relay.was_cut_off() || relay.over_cap() {
            let event = stream::cutoff_event(cap);
            sent.extend_from_slice(&event);
            let _ = sender.send(Frame::data(event)).await;
        }
        // The receipt event is part of the stored body, so a retry replays it too; it is
        // computed before persisting, so the stored body is the one sent.
        let receipted = reserved
            .charge(&shared.prices, relay.raw_price())
            .sign(&shared.deployment.dom, &shared.signer);
        let header = receipted.receipt().to_header();
        let event = stream::receipt_event(&header);
        sent.extend_from_slice(&event);
        let stored = StoredResponse {
            status: 200,
            content_type: stored_type,
            body: sent,
        };
        if let Err(error) = shared.store.finish(&receipted, &stored).await {
            tracing::error!(%error, "cannot persist a streamed receipt; the stream ends without it");
            return;
        }
        shared.metrics.charged(receipted.receipt().charge);
        shared.metrics.count(Outcome::Paid);
        let _ = sender.send(Frame::data(event)).await;
        let mut trailers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&header) {
            trailers.insert(RECEIPT_HEADER, value);
        }
        let _ = sender.send(Frame::trailers(trailers)).await;
    });
    let mut response = Response::new(Body::new(ChannelBody(receiver)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
            .unwrap_or(HeaderValue::from_static("text/event-stream")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::TRAILER, HeaderValue::from_static(RECEIPT_HEADER));
    response
}
