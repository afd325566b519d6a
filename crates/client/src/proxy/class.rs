//! Which cost class `C_c` pays for a request (PROTOCOL §5 step 1: at least the most the
//! request may cost), and the `max_tokens` that keeps an open-ended chat request inside it.
//! The bound itself is explained in the module docs of [`proxy`](super).

use axum::http::StatusCode;
use nullgate_protocol::price::{PriceList, RequestPrice};
use serde_json::{Map, Value};

use super::{error::ApiError, forward::JsonApi};

/// The class a request is paid with, and the `max_tokens` the proxy writes into its body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Choice {
    /// Index of `C_c` (0 = `C_1`).
    pub(super) class_index: u8,
    /// `C_c`.
    pub(super) class_cost: u64,
    /// `Some(n)`: the request left its completion open, and `max_tokens` must be set to `n`.
    pub(super) set_max_tokens: Option<u64>,
}

/// What bounds a request's token usage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Limits {
    /// Bytes of the body as forwarded (without a `max_tokens` the proxy adds): at least the
    /// prompt tokens.
    pub(super) prompt_bytes: u64,
    /// The completion tokens per choice, if the request limits them (`max_tokens`, …).
    pub(super) completion_limit: Option<u64>,
    /// The number of choices (`n`, at least 1).
    pub(super) choices: u64,
    /// The request field that limits completion tokens, named in a refusal.
    pub(super) limit_name: &'static str,
}

impl Limits {
    /// A request without a body, and so without tokens (`GET /v1/models`).
    pub(super) const NONE: Self = Self {
        prompt_bytes: 0,
        completion_limit: Some(0),
        choices: 1,
        limit_name: "max_tokens",
    };

    /// The limits of an `api` request whose forwarded body is `prompt_bytes` long: the
    /// largest of its [`JsonApi::limit_fields`] per choice, times its
    /// [`JsonApi::choices_field`]; an API that generates no tokens (embeddings) has a
    /// completion limit of 0.
    pub(super) fn of(
        api: &JsonApi,
        fields: &Map<String, Value>,
        prompt_bytes: usize,
    ) -> Result<Self, ApiError> {
        let mut completion_limit = api.set_limit.is_none().then_some(0);
        for &name in api.limit_fields {
            if let Some(limit) = count(fields, name)? {
                completion_limit = Some(completion_limit.map_or(limit, |l: u64| l.max(limit)));
            }
        }
        let choices = match api.choices_field {
            Some(name) => count(fields, name)?.unwrap_or(1).max(1),
            None => 1,
        };
        Ok(Self {
            prompt_bytes: u64::try_from(prompt_bytes).unwrap_or(u64::MAX),
            completion_limit,
            choices,
            limit_name: api
                .set_limit
                .or(api.limit_fields.first().copied())
                .unwrap_or("max_tokens"),
        })
    }
}

/// Picks the class for a request whose price is `price`.
///
/// - `Known(credits)` (a fixed route, a JSON-RPC body): the smallest class covering
///   `credits`.
/// - `Tokens { input: prompt, output: completion }` with a completion limit: the smallest
///   class covering `prompt·prompt_bytes + completion·choices·limit`.
/// - Without one: the smallest class covering the cost with `default_max_tokens`, and
///   `max_tokens = floor((C_c − prompt·prompt_bytes) / (completion·choices))`, the most that
///   class pays for; if that is 0 (only when `default_max_tokens` is 0), the next class.
///
/// A request that no class covers is refused (400), saying what would fit.
pub(super) fn choose(
    list: &PriceList,
    price: RequestPrice,
    limits: Limits,
    default_max_tokens: u64,
) -> Result<Choice, ApiError> {
    let (prompt, completion) = match price {
        RequestPrice::Known(credits) => {
            let (class_index, class_cost) = list.class_for(credits).ok_or_else(|| {
                too_large(
                    format!("this route costs {credits} credits"),
                    list,
                    limits.limit_name,
                )
            })?;
            return Ok(Choice {
                class_index,
                class_cost,
                set_max_tokens: None,
            });
        }
        RequestPrice::Tokens(prices) => (prices.input, prices.output),
    };
    let prompt_cost = prompt.saturating_mul(limits.prompt_bytes);
    let per_token = completion.saturating_mul(limits.choices);
    let worst = |tokens: u64| prompt_cost.saturating_add(per_token.saturating_mul(tokens));
    let fit = list
        .max_class()
        .checked_sub(prompt_cost)
        .and_then(|room| room.checked_div(per_token));
    let advice = || match fit {
        Some(0) | None => format!(
            "the prompt alone may cost {prompt_cost} credits ({} bytes × {prompt}); shorten it",
            limits.prompt_bytes
        ),
        Some(fit) => format!(
            "ask for at most {fit} completion tokens ({})",
            limits.limit_name
        ),
    };
    let explain = |tokens: u64| {
        format!(
            "this request may cost up to {} credits ({} bytes of request × {prompt} per prompt \
             token + {} × {tokens} completion tokens × {completion})",
            worst(tokens),
            limits.prompt_bytes,
            limits.choices,
        )
    };

    if let Some(limit) = limits.completion_limit {
        let (class_index, class_cost) = list.class_for(worst(limit)).ok_or_else(|| {
            too_large(
                format!("{}; {}", explain(limit), advice()),
                list,
                limits.limit_name,
            )
        })?;
        return Ok(Choice {
            class_index,
            class_cost,
            set_max_tokens: None,
        });
    }

    let cannot = || {
        too_large(
            format!(
                "{} with the default of {default_max_tokens} completion tokens; {}",
                explain(default_max_tokens),
                advice()
            ),
            list,
            limits.limit_name,
        )
    };
    let (first, _) = list
        .class_for(worst(default_max_tokens))
        .ok_or_else(cannot)?;
    if per_token == 0 {
        // Completion tokens cost nothing: the class does not depend on them.
        return Ok(Choice {
            class_index: first,
            class_cost: list.class(first).expect("class_for returned it"),
            set_max_tokens: None,
        });
    }
    list.classes()
        .iter()
        .enumerate()
        .skip(usize::from(first))
        .find_map(|(index, &class_cost)| {
            let max_tokens = class_cost.saturating_sub(prompt_cost) / per_token;
            (max_tokens >= 1).then_some(Choice {
                // At most MAX_CLASSES (8) classes: the index fits.
                class_index: index as u8,
                class_cost,
                set_max_tokens: Some(max_tokens),
            })
        })
        .ok_or_else(cannot)
}

/// A non-negative integer field (`null` or absent: `None`).
fn count(fields: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "nullgate_invalid_parameter",
                format!("'{name}' must be a non-negative integer"),
            )
            .with_param(name)
        }),
    }
}

fn too_large(why: String, list: &PriceList, limit_name: &'static str) -> ApiError {
    ApiError::invalid(
        StatusCode::BAD_REQUEST,
        "nullgate_request_too_large",
        format!(
            "request too large for the largest cost class: {why}, and the largest class pays \
             {} credits",
            list.max_class()
        ),
    )
    .with_param(limit_name)
}

#[cfg(test)]
mod tests {
    use nullgate_protocol::price::{Pricing, Route, TokenApi, TokenPrices};

    use super::*;

    fn list() -> PriceList {
        PriceList::new(
            vec![100, 1_000, 10_000],
            10,
            vec!["content-type".into()],
            vec![Route {
                method: "GET".into(),
                path: "/v1/models".into(),
                pricing: Pricing::Fixed { credits: 10 },
            }],
        )
        .unwrap()
    }

    const TOKENS: RequestPrice = RequestPrice::Tokens(TokenPrices {
        api: TokenApi::OpenAiChat,
        input: 1,
        output: 3,
    });

    fn limits(prompt_bytes: u64, completion_limit: Option<u64>, choices: u64) -> Limits {
        Limits {
            prompt_bytes,
            completion_limit,
            choices,
            limit_name: "max_tokens",
        }
    }

    #[test]
    fn explicit_limits_pick_the_smallest_covering_class() {
        let pick = |l| {
            choose(&list(), TOKENS, l, 1024)
                .ok()
                .map(|c| (c.class_index, c.set_max_tokens))
        };
        assert_eq!(pick(limits(40, Some(20), 1)), Some((0, None))); // 40 + 60 = 100
        assert_eq!(pick(limits(41, Some(20), 1)), Some((1, None)));
        assert_eq!(pick(limits(40, Some(20), 2)), Some((1, None))); // 40 + 120
        assert_eq!(pick(limits(100, Some(3300), 1)), Some((2, None))); // 10_000
        let refusal = choose(&list(), TOKENS, limits(100, Some(3301), 1), 1024).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn open_requests_get_the_most_their_class_pays_for() {
        // 100 + 3·1024 = 3172 → C_3 = 10_000; (10_000 − 100) / 3 = 3300.
        let choice = choose(&list(), TOKENS, limits(100, None, 1), 1024).unwrap();
        assert_eq!((choice.class_index, choice.set_max_tokens), (2, Some(3300)));
        // 100 + 3·10 = 130 → C_2 = 1_000; 900 / 3 = 300.
        let choice = choose(&list(), TOKENS, limits(100, None, 1), 10).unwrap();
        assert_eq!((choice.class_index, choice.set_max_tokens), (1, Some(300)));
        // Default 0: 99 fits C_1 but pays for 0 completion tokens → C_2.
        let choice = choose(&list(), TOKENS, limits(99, None, 1), 0).unwrap();
        assert_eq!((choice.class_index, choice.set_max_tokens), (1, Some(300)));
        assert!(choose(&list(), TOKENS, limits(10_000, None, 1), 1024).is_err());
    }

    #[test]
    fn fixed_routes_take_the_class_of_their_price() {
        let choice = choose(&list(), RequestPrice::Known(101), Limits::NONE, 1024).unwrap();
        assert_eq!((choice.class_index, choice.class_cost), (1, 1_000));
    }
}
