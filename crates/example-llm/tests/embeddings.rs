//! OpenAI's Embeddings API, `POST /v1/embeddings`, over real HTTP, as an OpenAI client sees it.

mod common;

use common::{answer, post, server, tokens};
use nullgate_example_llm::{CountersSnapshot, DEFAULT_MODEL, ExampleLlmConfig};
use serde_json::{Value, json};
use tiktoken_rs::o200k_base_singleton;

const PATH: &str = "/v1/embeddings";
const INPUTS: [&str; 3] = [
    "The food was delicious and the waiter was friendly.",
    "naïve café — 東京タワー 🦀",
    "The food was delicious and the waiter was friendly.",
];

/// The vectors of an embeddings list of floats, checking the list's shape.
fn vectors(list: &Value) -> Vec<Vec<f32>> {
    assert_eq!(list["object"], "list");
    assert_eq!(list["model"], DEFAULT_MODEL);
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["object"], "embedding");
            assert_eq!(item["index"], i);
            item["embedding"]
                .as_array()
                .unwrap_or_else(|| panic!("not floats: {item}"))
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Standard base64 (RFC 4648 §4), decoded as a client would, written independently of the
/// server's encoder.
fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    assert_eq!(text.len() % 4, 0, "{text}");
    let mut bits = 0u32;
    let mut held = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').chars() {
        bits = (bits << 6) | ALPHABET.find(c).unwrap_or_else(|| panic!("{c:?}")) as u32;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
        }
    }
    out
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn embeddings_have_the_openai_shape_exact_usage_and_stable_vectors() {
    let llm = server(ExampleLlmConfig::default()).await;
    let list = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": INPUTS, "encoding_format": "float"}),
        200,
    )
    .await;
    let expected: u64 = INPUTS.iter().map(|text| tokens(text)).sum();
    assert_eq!(
        list["usage"],
        json!({"prompt_tokens": expected, "total_tokens": expected})
    );
    let got = vectors(&list);
    assert_eq!(got.len(), 3);
    for vector in &got {
        assert_eq!(vector.len(), 16, "the default length");
        assert!((norm(vector) - 1.0).abs() < 1e-4);
    }
    assert_eq!(got[0], got[2], "equal inputs, equal vectors");
    assert_ne!(got[0], got[1]);

    // Without encoding_format: floats; one string alone: the same vector as in the list.
    let one = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": INPUTS[1]}),
        200,
    )
    .await;
    assert_eq!(vectors(&one), [got[1].clone()]);
    assert_eq!(one["usage"]["prompt_tokens"], tokens(INPUTS[1]));

    let wide = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": INPUTS[0], "dimensions": 3072}),
        200,
    )
    .await;
    let wide = &vectors(&wide)[0];
    assert_eq!(wide.len(), 3072);
    assert!((norm(wide) - 1.0).abs() < 1e-4);

    assert_eq!(
        llm.counters(),
        CountersSnapshot {
            embeddings: 3,
            embedding_tokens: expected + tokens(INPUTS[1]) + tokens(INPUTS[0]),
            ..CountersSnapshot::default()
        }
    );
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn base64_embeddings_decode_to_the_float_ones() {
    let llm = server(ExampleLlmConfig::default()).await;
    for dimensions in [1, 16, 257] {
        let request = |format: &str| {
            json!({"model": DEFAULT_MODEL, "input": INPUTS, "dimensions": dimensions,
                "encoding_format": format})
        };
        let floats = answer(&llm, PATH, &request("float"), 200).await;
        let encoded = answer(&llm, PATH, &request("base64"), 200).await;
        assert_eq!(encoded["usage"], floats["usage"]);
        let decoded: Vec<Vec<f32>> = encoded["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let bytes = decode_base64(item["embedding"].as_str().unwrap());
                assert_eq!(bytes.len(), 4 * dimensions);
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect();
        assert_eq!(decoded, vectors(&floats), "{dimensions} dimensions");
    }
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn token_arrays_count_their_length_and_embed_as_their_text() {
    let llm = server(ExampleLlmConfig::default()).await;
    let bpe = o200k_base_singleton();
    let arrays: Vec<Vec<u32>> = INPUTS[..2]
        .iter()
        .map(|text| bpe.encode_with_special_tokens(text))
        .collect();
    let from_texts = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": &INPUTS[..2]}),
        200,
    )
    .await;
    let from_arrays = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": arrays}),
        200,
    )
    .await;
    assert_eq!(vectors(&from_arrays), vectors(&from_texts));
    let length = (arrays[0].len() + arrays[1].len()) as u64;
    assert_eq!(from_arrays["usage"]["prompt_tokens"], length);
    assert_eq!(from_texts["usage"]["prompt_tokens"], length);

    let one = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": arrays[1]}),
        200,
    )
    .await;
    assert_eq!(vectors(&one), vectors(&from_texts)[1..]);
    // Token ids need not form the text of a tokenization; any ids of the vocabulary count one
    // each.
    let raw = answer(
        &llm,
        PATH,
        &json!({"model": DEFAULT_MODEL, "input": [1, 2, 3, 4]}),
        200,
    )
    .await;
    assert_eq!(raw["usage"]["prompt_tokens"], 4);
    llm.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_requests_get_openai_errors() {
    let llm = server(ExampleLlmConfig::default()).await;
    for body in [
        json!({"model": DEFAULT_MODEL, "input": ""}),
        json!({"model": DEFAULT_MODEL, "input": []}),
        json!({"model": DEFAULT_MODEL, "input": ["a", ""]}),
        json!({"model": DEFAULT_MODEL, "input": [[1, 2], []]}),
        json!({"model": DEFAULT_MODEL, "input": [4_000_000_000u32]}),
        json!({"model": DEFAULT_MODEL, "input": vec!["a"; 2049]}),
        json!({"model": DEFAULT_MODEL, "input": "hi ".repeat(9000)}),
        json!({"model": DEFAULT_MODEL, "input": {"text": "a"}}),
        json!({"model": DEFAULT_MODEL}),
        json!({"model": DEFAULT_MODEL, "input": "a", "dimensions": 0}),
        json!({"model": DEFAULT_MODEL, "input": "a", "dimensions": 3073}),
        json!({"model": DEFAULT_MODEL, "input": "a", "encoding_format": "hex"}),
    ] {
        let response = post(&llm, PATH, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = &response.json::<Value>().await.unwrap()["error"];
        assert_eq!(error["type"], "invalid_request_error", "{body}");
        assert!(error["message"].is_string(), "{body}");
        assert!(
            error["param"].is_null() && error.get("code").is_some(),
            "{error}"
        );
    }
    let unknown = post(
        &llm,
        PATH,
        &json!({"model": "text-embedding-9", "input": "a"}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_found"
    );
    assert_eq!(llm.counters(), CountersSnapshot::default());
    llm.stop().await.unwrap();
}
