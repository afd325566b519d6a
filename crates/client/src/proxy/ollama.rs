//! Ollama's routes, `POST /api/chat`, `POST /api/generate` and `GET /api/tags`, translated
//! to the gateway's OpenAI routes (`/v1/chat/completions`, `/v1/models`) and back, so an
//! agent written for a local Ollama (`OLLAMA_HOST=http://127.0.0.1:8787`) gets the paid
//! model instead. Errors are Ollama's `{"error": "…"}`.
//!
//! What is translated:
//!
//! - `messages` (`role`, `content`, an assistant's `tool_calls`, a tool's answer), or
//!   `prompt` with `system`; `tools`; `format` (`"json"` or a JSON schema);
//!   `options.num_predict` → `max_tokens`, `temperature`, `top_p`, `seed`, `stop`.
//! - `stream`, `true` when absent as in Ollama: the answer is NDJSON
//!   (`application/x-ndjson`), one line per generated piece and a last line with
//!   `"done": true`, the `done_reason` and the token counts (`prompt_eval_count`,
//!   `eval_count`). The gateway's answer arrives whole (see the proxy's docs), so the
//!   lines do too.
//!
//! What is refused (400, saying so): `images` (send them to `/v1/chat/completions` as image
//! parts), `context` and `template`/`raw` (they need the model's own tokens and template),
//! and `suffix`. Ollama-only settings (`keep_alive`, `think`, the other `options`) are
//! dropped.

use std::{sync::Arc, time::SystemTime};

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderValue, Method, StatusCode},
    response::Response,
};
use serde_json::{Map, Value, json};

use super::{
    error::{ApiError, Dialect},
    forward::{self, App},
    openai,
};
use crate::paid::{PaidResponse, Payer};

const NDJSON: &str = "application/x-ndjson";

/// Which of Ollama's two generation routes a request came in on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    /// `/api/chat`: messages in, `message` out.
    Chat,
    /// `/api/generate`: `prompt` (and `system`) in, `response` out.
    Generate,
}

/// `POST /api/chat`.
pub(super) async fn chat<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generation(app, Route::Chat, body).await
}

/// `POST /api/generate`.
pub(super) async fn generate<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generation(app, Route::Generate, body).await
}

/// `GET /api/tags`: the gateway's `/v1/models`, as Ollama lists its local models.
pub(super) async fn tags<P: Payer>(State(app): State<Arc<App<P>>>) -> Response {
    let answer = async {
        let request = openai::models_request(&*app.payer)?;
        let answer = forward::pay(&*app.payer, request).await?;
        let list = upstream_json(&answer)?;
        let models: Vec<Value> = list["data"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|model| {
                let id = model["id"].as_str()?;
                Some(json!({
                    "name": id,
                    "model": id,
                    "modified_at": timestamp(model["created"].as_u64()),
                }))
            })
            .collect();
        Ok::<_, ApiError>(ndjson_or_json(
            &answer,
            json!({ "models": models }).to_string().into(),
            false,
        ))
    };
    answer
        .await
        .unwrap_or_else(|error| error.in_dialect(Dialect::Ollama))
}

async fn generation<P: Payer>(
    app: Arc<App<P>>,
    route: Route,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let body = forward::read_body(body, &app.config)?;
        let request = parse_object(&body)?;
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("'model' is required (a model name from /api/tags)"))?
            .to_owned();
        let stream = request.get("stream").and_then(Value::as_bool) != Some(false);
        let fields = to_chat(&request, route, stream)?;
        let list = app.payer.price_list();
        let price = forward::priced(list, &Method::POST, openai::CHAT.path, &[])?;
        let prepared = forward::prepare_fields(&app, &openai::CHAT, price, fields)?;
        let answer = forward::pay(&*app.payer, prepared.request).await?;
        let body = if stream {
            from_stream(&answer, route, &model)?
        } else {
            from_completion(&answer, route, &model)?
        };
        Ok::<_, ApiError>(ndjson_or_json(&answer, body, stream))
    };
    answer
        .await
        .unwrap_or_else(|error| error.in_dialect(Dialect::Ollama))
}

/// The chat completions request for an Ollama request on `route`.
fn to_chat(
    request: &Map<String, Value>,
    route: Route,
    stream: bool,
) -> Result<Map<String, Value>, ApiError> {
    for (field, why) in [
        (
            "images",
            "images are not translated; send them to /v1/chat/completions as image parts",
        ),
        (
            "context",
            "the gateway's model does not take Ollama's context tokens",
        ),
        ("template", "the gateway's model applies its own template"),
        ("raw", "the gateway's model applies its own template"),
        ("suffix", "fill-in-the-middle is not translated"),
    ] {
        let set = match request.get(field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::String(text)) => !text.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(invalid(format!(
                "the nullgate proxy does not forward '{field}': {why}"
            )));
        }
    }
    let messages = match route {
        Route::Chat => chat_messages(request.get("messages"))?,
        Route::Generate => {
            let prompt = request
                .get("prompt")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("'prompt' is required and must be a string"))?;
            let mut messages = Vec::new();
            if let Some(system) = request.get("system").and_then(Value::as_str) {
                messages.push(json!({ "role": "system", "content": system }));
            }
            messages.push(json!({ "role": "user", "content": prompt }));
            messages
        }
    };
    let mut fields = Map::new();
    fields.insert("model".into(), request["model"].clone());
    fields.insert("messages".into(), Value::Array(messages));
    fields.insert("store".into(), Value::Bool(false));
    if stream {
        fields.insert("stream".into(), Value::Bool(true));
        fields.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    if let Some(tools) = request.get("tools").filter(|t| !t.is_null()) {
        fields.insert("tools".into(), tools.clone());
    }
    match request.get("format") {
        None | Some(Value::Null) => {}
        Some(Value::String(format)) if format.is_empty() => {}
        Some(Value::String(format)) if format == "json" => {
            fields.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        Some(schema @ Value::Object(_)) => {
            fields.insert(
                "response_format".into(),
                json!({ "type": "json_schema",
                        "json_schema": { "name": "response", "schema": schema } }),
            );
        }
        Some(_) => return Err(invalid("'format' must be \"json\" or a JSON schema object")),
    }
    if let Some(options) = request.get("options").and_then(Value::as_object) {
        // A negative num_predict is Ollama's "no limit": the class then sets one.
        if let Some(limit) = options.get("num_predict").and_then(Value::as_u64) {
            fields.insert("max_tokens".into(), Value::from(limit));
        }
        for name in ["temperature", "top_p", "seed", "stop"] {
            if let Some(value) = options.get(name).filter(|v| !v.is_null()) {
                fields.insert(name.into(), value.clone());
            }
        }
    }
    Ok(fields)
}

/// Ollama's messages as OpenAI's: an assistant's tool calls get ids (`call_0`, `call_1`, …)
/// and each tool answer the id of the oldest call not yet answered.
fn chat_messages(messages: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("'messages' is required and must be an array"))?;
    let mut out = Vec::with_capacity(messages.len());
    let mut calls = 0usize;
    let mut unanswered = std::collections::VecDeque::new();
    for message in messages {
        let role = message["role"]
            .as_str()
            .ok_or_else(|| invalid("each message needs a 'role' string"))?;
        let content = match &message["content"] {
            Value::Null => "",
            Value::String(text) => text.as_str(),
            _ => return Err(invalid("a message's 'content' must be a string")),
        };
        if message
            .get("images")
            .and_then(Value::as_array)
            .is_some_and(|images| !images.is_empty())
        {
            return Err(invalid(
                "the nullgate proxy does not forward 'images': send them to \
                 /v1/chat/completions as image parts",
            ));
        }
        let mut translated = json!({ "role": role, "content": content });
        if let Some(tool_calls) = message.get("tool_calls").and_then(Value::as_array) {
            let mut openai_calls = Vec::with_capacity(tool_calls.len());
            for call in tool_calls {
                let function = &call["function"];
                let name = function["name"]
                    .as_str()
                    .ok_or_else(|| invalid("a tool call needs function.name"))?;
                let id = format!("call_{calls}");
                calls += 1;
                unanswered.push_back(id.clone());
                openai_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": function["arguments"].to_string() },
                }));
            }
            translated["tool_calls"] = Value::Array(openai_calls);
        }
        if role == "tool" {
            let id = unanswered
                .pop_front()
                .ok_or_else(|| invalid("a 'tool' message answers no earlier tool call"))?;
            translated["tool_call_id"] = Value::String(id);
        }
        out.push(translated);
    }
    Ok(out)
}

/// An unstreamed chat completion as Ollama's one answer object.
fn from_completion(answer: &PaidResponse, route: Route, model: &str) -> Result<Bytes, ApiError> {
    let completion = upstream_json(answer)?;
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let text = message["content"].as_str().unwrap_or_default();
    let mut done = final_object(
        route,
        model,
        completion["created"].as_u64(),
        text,
        tool_calls(&message["tool_calls"]),
    );
    finish(
        &mut done,
        choice["finish_reason"].as_str(),
        &completion["usage"],
    );
    Ok(done.to_string().into())
}

/// A streamed chat completion (its server-sent events) as Ollama's NDJSON lines.
fn from_stream(answer: &PaidResponse, route: Route, model: &str) -> Result<Bytes, ApiError> {
    if !answer.status.is_success() {
        return Err(upstream_error(answer));
    }
    let text = std::str::from_utf8(&answer.body).map_err(|_| bad_upstream())?;
    let mut lines = String::new();
    let mut created = None;
    let mut finish_reason = None;
    let mut usage = Value::Null;
    let mut calls = Vec::new();
    for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| bad_upstream())?;
        created = created.or(chunk["created"].as_u64());
        if chunk["usage"].is_object() {
            usage = chunk["usage"].clone();
        }
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish_reason = Some(reason.to_owned());
        }
        collect_tool_call_deltas(&choice["delta"]["tool_calls"], &mut calls);
        if let Some(piece) = choice["delta"]["content"].as_str()
            && !piece.is_empty()
        {
            let mut line = final_object(route, model, created, piece, Vec::new());
            line["done"] = Value::Bool(false);
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    let calls = calls
        .into_iter()
        .map(|(name, arguments)| {
            json!({ "function": { "name": name,
                                  "arguments": serde_json::from_str::<Value>(&arguments)
                                      .unwrap_or(Value::String(arguments)) } })
        })
        .collect();
    let mut done = final_object(route, model, created, "", calls);
    finish(&mut done, finish_reason.as_deref(), &usage);
    lines.push_str(&done.to_string());
    lines.push('\n');
    Ok(lines.into())
}

/// Appends a stream's tool call fragments (`index`, a name once, the arguments in pieces).
fn collect_tool_call_deltas(deltas: &Value, calls: &mut Vec<(String, String)>) {
    for delta in deltas.as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(index) = delta["index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
        else {
            continue;
        };
        // A stream names at most a few calls; an index far beyond them is refused by
        // ignoring it, so a hostile answer cannot make this grow.
        if index > calls.len() || index >= 128 {
            continue;
        }
        if index == calls.len() {
            calls.push((String::new(), String::new()));
        }
        let call = &mut calls[index];
        if let Some(name) = delta["function"]["name"].as_str() {
            call.0.push_str(name);
        }
        if let Some(arguments) = delta["function"]["arguments"].as_str() {
            call.1.push_str(arguments);
        }
    }
}

/// OpenAI's tool calls (arguments as a JSON string) as Ollama's (arguments as an object).
fn tool_calls(calls: &Value) -> Vec<Value> {
    calls
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|call| {
            let function = &call["function"];
            let arguments = function["arguments"]
                .as_str()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_else(|| function["arguments"].clone());
            json!({ "function": { "name": function["name"], "arguments": arguments } })
        })
        .collect()
}

/// One answer object: `message` for chat, `response` for generate.
fn final_object(
    route: Route,
    model: &str,
    created: Option<u64>,
    text: &str,
    calls: Vec<Value>,
) -> Value {
    let mut object = json!({
        "model": model,
        "created_at": timestamp(created),
        "done": true,
    });
    match route {
        Route::Chat => {
            let mut message = json!({ "role": "assistant", "content": text });
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls);
            }
            object["message"] = message;
        }
        Route::Generate => object["response"] = Value::String(text.to_owned()),
    }
    object
}

/// Adds the `done_reason` and token counts to the last object.
fn finish(done: &mut Value, finish_reason: Option<&str>, usage: &Value) {
    done["done_reason"] = Value::String(
        match finish_reason {
            Some("length") => "length",
            _ => "stop",
        }
        .to_owned(),
    );
    if let Some(prompt) = usage["prompt_tokens"].as_u64() {
        done["prompt_eval_count"] = Value::from(prompt);
    }
    if let Some(completion) = usage["completion_tokens"].as_u64() {
        done["eval_count"] = Value::from(completion);
    }
}

/// The answer's JSON body, or the upstream's error in Ollama's words.
fn upstream_json(answer: &PaidResponse) -> Result<Value, ApiError> {
    if !answer.status.is_success() {
        return Err(upstream_error(answer));
    }
    serde_json::from_slice(&answer.body).map_err(|_| bad_upstream())
}

/// A non-2xx answer: its status, and the message of its OpenAI-style error if it has one.
fn upstream_error(answer: &PaidResponse) -> ApiError {
    let message = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the gateway answered {}", answer.status));
    ApiError::invalid(answer.status, "nullgate_upstream_error", message)
}

fn bad_upstream() -> ApiError {
    ApiError::invalid(
        StatusCode::BAD_GATEWAY,
        "nullgate_upstream_not_openai",
        "the gateway's answer is not an OpenAI chat completion, so it cannot be translated",
    )
}

/// The answer's status and charge headers with a translated body.
fn ndjson_or_json(answer: &PaidResponse, body: Bytes, stream: bool) -> Response {
    let content_type = if stream { NDJSON } else { "application/json" };
    forward::answer_with(answer, HeaderValue::from_static(content_type), body, stream)
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(invalid(
            "the request body must be a JSON object (an Ollama chat or generate request)",
        )),
    }
}

/// A Unix time as RFC 3339, `now` when the answer gave none.
fn timestamp(unix_seconds: Option<u64>) -> String {
    let time = unix_seconds.map_or_else(SystemTime::now, |secs| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs.min(1 << 40))
    });
    humantime::format_rfc3339_seconds(time).to_string()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(StatusCode::BAD_REQUEST, "nullgate_invalid_request", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn chat_requests_become_chat_completions() {
        let request = object(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
                {"role": "tool", "content": "12°C"},
            ],
            "options": {"num_predict": 40, "temperature": 0.2, "num_ctx": 4096},
            "format": "json",
            "keep_alive": "5m",
        }));
        let fields = to_chat(&request, Route::Chat, true).unwrap();
        assert_eq!(fields["max_tokens"], 40);
        assert_eq!(fields["temperature"], 0.2);
        assert_eq!(fields["response_format"], json!({"type": "json_object"}));
        assert_eq!(fields["stream_options"], json!({"include_usage": true}));
        assert_eq!(fields["store"], false);
        assert!(fields.get("keep_alive").is_none() && fields.get("num_ctx").is_none());
        let messages = fields["messages"].as_array().unwrap();
        assert_eq!(messages[2]["tool_calls"][0]["id"], "call_0");
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Oslo"}"#
        );
        assert_eq!(messages[3]["tool_call_id"], "call_0");
    }

    #[test]
    fn generate_requests_become_a_system_and_a_user_message() {
        let request = object(json!({"model": "m", "prompt": "hi", "system": "s", "stream": false}));
        let fields = to_chat(&request, Route::Generate, false).unwrap();
        assert_eq!(
            fields["messages"],
            json!([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
        );
        assert!(fields.get("stream").is_none());
    }

    #[test]
    fn what_cannot_be_translated_is_refused() {
        for request in [
            json!({"model": "m", "prompt": "hi", "images": ["aGk="]}),
            json!({"model": "m", "prompt": "hi", "context": [1, 2]}),
            json!({"model": "m", "prompt": "hi", "raw": true}),
            json!({"model": "m"}),
        ] {
            assert!(to_chat(&object(request), Route::Generate, true).is_err());
        }
        let orphan = json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]});
        assert!(to_chat(&object(orphan), Route::Chat, true).is_err());
        let image = json!({"model": "m", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]});
        assert!(to_chat(&object(image), Route::Chat, true).is_err());
    }
}
