//! Every route the proxy has no handler of its own for: passed through when the gateway's
//! price list prices it at a fixed price or per JSON-RPC method, a 404 in the caller's
//! dialect otherwise.
//!
//! - **Fixed-price routes** (a search API, say) go as they came: method, path with its
//!   query, and body unchanged. The only header is `content-type`, the agent's own, when
//!   the price list signs it and there is a body.
//! - **JSON-RPC routes** (an Ethereum node) are priced per method, a batch as the sum of
//!   its calls. The request ids are replaced by their position in the batch (0 for a single
//!   call) and put back in the answer: libraries number their calls 1, 2, 3, …, and the
//!   counter would link every call one client makes.
//! - A **token-priced route** the proxy has no handler for is refused (404): it does not
//!   know that API's fields, so it cannot bound the tokens an answer may use.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::Response,
};
use nullgate_protocol::price::Pricing;
use serde_json::Value;

use super::{
    class::{self, Limits},
    error::{ApiError, Dialect},
    forward::{self, App},
};
use crate::paid::{PaidRequest, PaidResponse, Payer};

/// What the proxy serves itself, for the message of a 404.
const SERVED: &str = "POST /v1/chat/completions, /v1/responses, /v1/embeddings and \
                      /v1/messages, GET /v1/models, POST /api/chat and /api/generate, GET \
                      /api/tags, and the price list's fixed-price and JSON-RPC routes";

/// Any route without a handler of its own.
pub(super) async fn fallback<P: Payer>(
    State(app): State<Arc<App<P>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let dialect = Dialect::of_path(uri.path());
    let answer = async {
        let list = app.payer.price_list();
        let pricing = list
            .route(method.as_str(), uri.path())
            .map(|route| &route.pricing)
            .ok_or_else(|| unknown(&method, &uri))?;
        if let Pricing::Tokens(_) = pricing {
            return Err(ApiError::invalid(
                StatusCode::NOT_FOUND,
                "nullgate_route_not_served",
                format!(
                    "the gateway prices {method} {} by tokens, but the nullgate proxy does not \
                     know that API's fields and so cannot bound what a call may cost; it \
                     serves {SERVED}",
                    uri.path()
                ),
            ));
        }
        let body = forward::read_body(body, &app.config)?;
        let price = forward::priced(list, &method, uri.path(), &body)?;
        let choice = class::choose(list, price, Limits::NONE, 0)?;
        let rpc = matches!(pricing, Pricing::JsonRpc(_));
        let (body, ids) = if rpc {
            renumber(&body)?
        } else {
            (body, Vec::new())
        };
        let mut forwarded = Vec::new();
        let content_type = headers.get(header::CONTENT_TYPE);
        if !body.is_empty()
            && list.signed_headers().iter().any(|h| h == "content-type")
            && let Some(value) = content_type
        {
            forwarded.push(("content-type".to_owned(), value.as_bytes().to_vec()));
        }
        let request = PaidRequest {
            method: method.clone(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
            headers: forwarded,
            body,
            class_index: choice.class_index,
        };
        let answer = forward::pay(&*app.payer, request).await?;
        if rpc {
            Ok(restore_ids(answer, &ids))
        } else {
            Ok(forward::respond(answer, false))
        }
    };
    answer
        .await
        .unwrap_or_else(|error: ApiError| error.in_dialect(dialect))
}

fn unknown(method: &Method, uri: &Uri) -> ApiError {
    ApiError::invalid(
        StatusCode::NOT_FOUND,
        "nullgate_unknown_url",
        format!(
            "Invalid URL ({method} {}): the gateway's price list has no such route; the \
             nullgate proxy serves {SERVED}",
            uri.path()
        ),
    )
}

/// A JSON-RPC body with each call's id replaced by its position, and the ids it had
/// (`None` for a notification, which has none and gets none).
fn renumber(body: &[u8]) -> Result<(Bytes, Vec<Option<Value>>), ApiError> {
    // The body priced, so it is JSON: an object or a non-empty array.
    let mut value: Value = serde_json::from_slice(body).map_err(|_| not_rpc())?;
    let mut ids = Vec::new();
    let mut take = |call: &mut Value, at: usize| {
        let object = call.as_object_mut().ok_or_else(not_rpc)?;
        ids.push(object.remove("id"));
        if ids.last().is_some_and(Option::is_some) {
            object.insert("id".to_owned(), Value::from(at));
        }
        Ok::<_, ApiError>(())
    };
    match &mut value {
        Value::Array(calls) => {
            for (at, call) in calls.iter_mut().enumerate() {
                take(call, at)?;
            }
        }
        call => take(call, 0)?,
    }
    let bytes = serde_json::to_vec(&value).map_err(|_| not_rpc())?;
    Ok((bytes.into(), ids))
}

/// The answer with each response's id put back; an answer that is not JSON-RPC goes as it
/// came.
fn restore_ids(answer: PaidResponse, ids: &[Option<Value>]) -> Response {
    let Ok(mut value) = serde_json::from_slice::<Value>(&answer.body) else {
        return forward::respond(answer, false);
    };
    let put_back = |response: &mut Value| {
        let Some(object) = response.as_object_mut() else {
            return;
        };
        let original = object
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| ids.get(at))
            .and_then(Option::as_ref);
        if let Some(original) = original {
            object.insert("id".to_owned(), original.clone());
        }
    };
    match &mut value {
        Value::Array(responses) => responses.iter_mut().for_each(put_back),
        response => put_back(response),
    }
    let body = serde_json::to_vec(&value).map_or_else(|_| answer.body.clone(), Bytes::from);
    forward::answer_with(
        &answer,
        HeaderValue::from_static("application/json"),
        body,
        false,
    )
}

fn not_rpc() -> ApiError {
    ApiError::invalid(
        StatusCode::BAD_REQUEST,
        "nullgate_invalid_json_rpc",
        "the body is not a JSON-RPC call or batch of calls (objects with a \"method\")",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_are_positions_and_notifications_stay_without() {
        let (body, ids) = renumber(
            br#"[{"jsonrpc":"2.0","id":"a-7","method":"eth_chainId"},
                 {"jsonrpc":"2.0","method":"eth_subscribe"},
                 {"jsonrpc":"2.0","id":9,"method":"eth_blockNumber"}]"#,
        )
        .unwrap();
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent[0]["id"], 0);
        assert!(sent[1].get("id").is_none());
        assert_eq!(sent[2]["id"], 2);
        assert_eq!(ids, vec![Some(json!("a-7")), None, Some(json!(9))]);
        let (body, ids) = renumber(br#"{"jsonrpc":"2.0","id":41,"method":"m"}"#).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["id"], 0);
        assert_eq!(ids, vec![Some(json!(41))]);
        assert!(renumber(b"[1]").is_err());
    }
}
