//! `POST /v1/embeddings`: OpenAI's Embeddings API, the request, deterministic vectors and the
//! usage.
//!
//! Each input's vector is a unit vector drawn from a generator seeded with a hash of the
//! input's text (a token array's text being what its tokens decode to), so equal inputs get
//! equal vectors, whatever form they came in. Its length is `dimensions`, [`DEFAULT_DIMENSIONS`]
//! unless asked otherwise. `usage.prompt_tokens` (and `total_tokens`, the same) is the sum of
//! the inputs' o200k_base tokens, a token array counting its length.

use serde::Deserialize;
use serde_json::{Value, json};
use tiktoken_rs::CoreBPE;

use crate::{error::ApiError, reply::fnv1a, tokens};

/// The vectors' length when the request does not set `dimensions`; small, to keep tests and
/// the demo light.
const DEFAULT_DIMENSIONS: u64 = 16;
/// The largest `dimensions` accepted (text-embedding-3-large's length).
const MAX_DIMENSIONS: u64 = 3072;
/// The most inputs one request may embed, as OpenAI allows.
const MAX_INPUTS: usize = 2048;
/// The most tokens one input may have, as OpenAI allows.
const MAX_INPUT_TOKENS: u64 = 8192;

/// The fields of an embeddings request that this server acts on; the others (`user`) are
/// accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingsRequest {
    model: String,
    input: Input,
    dimensions: Option<u64>,
    encoding_format: Option<String>,
}

/// What to embed: a string, strings, a token array or token arrays.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenArrays(Vec<Vec<u32>>),
}

/// How the vectors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// JSON arrays of numbers.
    Float,
    /// Strings: the little-endian `f32` bytes in standard base64 (what OpenAI's Python SDK asks
    /// for by default).
    Base64,
}

/// The embeddings decided from a valid request, before they are sent.
#[derive(Debug, Clone)]
pub(crate) struct Embeddings {
    model: String,
    vectors: Vec<Vec<f32>>,
    /// `usage.prompt_tokens`.
    pub(crate) prompt_tokens: u64,
    encoding: Encoding,
}

impl Embeddings {
    /// Checks `request` and computes the vectors and the usage; `models` are the served ids.
    pub(crate) fn plan(
        bpe: &CoreBPE,
        models: &[String],
        request: EmbeddingsRequest,
    ) -> Result<Self, ApiError> {
        // Each input as (its text's bytes, its tokens).
        let inputs: Vec<(Vec<u8>, u64)> = match request.input {
            Input::Text(text) => vec![text_input(bpe, text)],
            Input::Texts(texts) => texts.into_iter().map(|t| text_input(bpe, t)).collect(),
            Input::Tokens(tokens) => vec![token_input(bpe, &tokens)?],
            Input::TokenArrays(arrays) => arrays
                .iter()
                .map(|tokens| token_input(bpe, tokens))
                .collect::<Result<_, _>>()?,
        };
        if inputs.is_empty() || inputs.iter().any(|(_, tokens)| *tokens == 0) {
            return Err(ApiError::invalid(
                "Invalid 'input': an input must not be empty, nor any of its strings or token \
                 arrays.",
            ));
        }
        if inputs.len() > MAX_INPUTS {
            return Err(ApiError::invalid(format!(
                "Invalid 'input': array too long. Expected an array with maximum length \
                 {MAX_INPUTS}, but got an array with length {} instead.",
                inputs.len()
            )));
        }
        if let Some((_, tokens)) = inputs.iter().find(|(_, t)| *t > MAX_INPUT_TOKENS) {
            return Err(ApiError::invalid(format!(
                "This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you \
                 requested {tokens} tokens in one input. Please reduce your prompt."
            )));
        }
        ApiError::check_minimum("dimensions", request.dimensions, 1)?;
        let dimensions = request.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
        if dimensions > MAX_DIMENSIONS {
            return Err(ApiError::invalid(format!(
                "Invalid 'dimensions': integer above maximum value. Expected a value <= \
                 {MAX_DIMENSIONS}, but got {dimensions} instead."
            )));
        }
        let encoding = match request.encoding_format.as_deref() {
            None | Some("float") => Encoding::Float,
            Some("base64") => Encoding::Base64,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "Invalid 'encoding_format': '{other}'. Expected 'float' or 'base64'."
                )));
            }
        };
        if !models.contains(&request.model) {
            return Err(ApiError::model_not_found(&request.model));
        }
        let dimensions = usize::try_from(dimensions).unwrap_or(usize::MAX);
        Ok(Self {
            model: request.model,
            prompt_tokens: inputs
                .iter()
                .map(|(_, t)| t)
                .fold(0, |a, t| a.saturating_add(*t)),
            vectors: inputs
                .iter()
                .map(|(bytes, _)| vector(bytes, dimensions))
                .collect(),
            encoding,
        })
    }

    /// The `list` of `embedding` objects, with the usage.
    pub(crate) fn to_json(&self) -> Value {
        let data: Vec<Value> = self
            .vectors
            .iter()
            .enumerate()
            .map(|(index, vector)| {
                let embedding = match self.encoding {
                    Encoding::Float => json!(vector),
                    Encoding::Base64 => json!(base64(
                        &vector
                            .iter()
                            .flat_map(|x| x.to_le_bytes())
                            .collect::<Vec<u8>>()
                    )),
                };
                json!({ "object": "embedding", "index": index, "embedding": embedding })
            })
            .collect();
        json!({
            "object": "list",
            "data": data,
            "model": self.model,
            "usage": { "prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens },
        })
    }
}

fn text_input(bpe: &CoreBPE, text: String) -> (Vec<u8>, u64) {
    let tokens = tokens::count(bpe, &text);
    (text.into_bytes(), tokens)
}

/// A token array's text (as bytes: its tokens need not end on a character) and length.
fn token_input(bpe: &CoreBPE, tokens: &[u32]) -> Result<(Vec<u8>, u64), ApiError> {
    let bytes = bpe.decode_bytes(tokens).map_err(|e| {
        ApiError::invalid(format!(
            "Invalid 'input': token {} is not in the o200k_base vocabulary.",
            e.token
        ))
    })?;
    Ok((bytes, tokens.len() as u64))
}

/// A unit vector of `dimensions` components, drawn by SplitMix64 seeded with the FNV-1a hash of
/// `bytes`.
fn vector(bytes: &[u8], dimensions: usize) -> Vec<f32> {
    let mut state = fnv1a(bytes);
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // The top 24 bits, exact in an f32, spread over [-1, 1).
            (z >> 40) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// `bytes` in standard base64 (RFC 4648 §4), padded.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of n bytes fills n + 1 characters; padding fills the rest of the four.
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    ALPHABET[((group >> (18 - 6 * i)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    fn plan(body: Value) -> Result<Embeddings, ApiError> {
        let request: EmbeddingsRequest = serde_json::from_value(body).unwrap();
        Embeddings::plan(tokens::bpe().unwrap(), &["m".to_owned()], request)
    }

    #[test]
    fn base64_follows_rfc_4648() {
        for (bytes, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(bytes.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn vectors_are_unit_length_deterministic_and_distinct() {
        let a = vector(b"hello", 64);
        assert_eq!(a.len(), 64);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(a.iter().all(|x| x.abs() <= 1.0));
        assert_eq!(a, vector(b"hello", 64));
        assert_ne!(a, vector(b"hellp", 64));
    }

    #[test]
    fn token_arrays_embed_as_their_text() {
        let bpe = tokens::bpe().unwrap();
        let ids = bpe.encode_with_special_tokens("hello there");
        let text = plan(json!({"model": "m", "input": "hello there"})).unwrap();
        let array = plan(json!({"model": "m", "input": ids})).unwrap();
        assert_eq!(text.vectors, array.vectors);
        assert_eq!(text.prompt_tokens, ids.len() as u64);
        assert_eq!(array.prompt_tokens, ids.len() as u64);
    }

    #[test]
    fn invalid_requests_are_refused() {
        for (body, status) in [
            (json!({"model": "m", "input": ""}), 400),
            (json!({"model": "m", "input": []}), 400),
            (json!({"model": "m", "input": ["a", ""]}), 400),
            (json!({"model": "m", "input": [[1, 2], []]}), 400),
            (json!({"model": "m", "input": [u32::MAX]}), 400),
            (json!({"model": "m", "input": "a", "dimensions": 0}), 400),
            (json!({"model": "m", "input": "a", "dimensions": 3073}), 400),
            (
                json!({"model": "m", "input": "a", "encoding_format": "hex"}),
                400,
            ),
            (json!({"model": "other", "input": "a"}), 404),
        ] {
            let error = plan(body.clone()).unwrap_err();
            assert_eq!(error.status.as_u16(), status, "{body}");
        }
    }
}
