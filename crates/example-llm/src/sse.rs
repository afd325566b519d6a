//! Server-sent events: their framing, and a response that sends them one by one through a
//! channel from a task, so that a client sees them arrive as they are sent.

use std::{convert::Infallible, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::header,
    response::{IntoResponse, Response},
};
use serde_json::Value;
use tokio::sync::mpsc;

/// An event with only a `data:` line, as OpenAI's Chat Completions stream sends them.
pub(crate) fn data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// An event with an `event:` line naming its type and a `data:` line carrying `data`, as the
/// Anthropic Messages and OpenAI Responses streams send them.
pub(crate) fn named(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// A `text/event-stream` response sending `events` in order, `delay` apart; it stops early if
/// the client goes away.
pub(crate) fn response(events: Vec<Bytes>, delay: Duration) -> Response {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        for (i, event) in events.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if sender.send(event).await.is_err() {
                return; // the client went away
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|event| event.map(Ok::<_, Infallible>))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
