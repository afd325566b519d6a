//! The price list (PROTOCOL §2 `priceListHash`, §6 step 5, §11): what each route costs, the
//! cost classes and floor fee it is read with, and which request headers are signed and
//! forwarded.
//!
//! It exists as one canonical byte string, and `priceListHash` is the SHA-256 of exactly
//! those bytes. The grammar is line-based ASCII, each line ending in `\n`:
//!
//! ```text
//! nullgate-price-list 1
//! classes <C_1> <C_2> … <C_max>          at most 8, strictly increasing
//! floor <Δ_min>                           1 ≤ Δ_min ≤ C_1
//! signed-header <name>                    zero or more, lowercase, sorted, unique
//! route <METHOD> <path> fixed <credits>                    Δ_min ≤ credits ≤ C_max
//! route <METHOD> <path> openai-tokens <input> <output>     credits per token: chat
//!                                                          completions, embeddings
//! route <METHOD> <path> responses-tokens <input> <output>  the OpenAI Responses API
//! route <METHOD> <path> anthropic-tokens <input> <output>  Anthropic Messages
//! route <METHOD> <path> json-rpc <name>=<credits> …        per JSON-RPC method, sorted by
//!                                                          name, unique, 0 ≤ credits ≤ C_max
//! ```
//!
//! Routes are sorted by path, then method, each `(method, path)` once; paths match the
//! request's path exactly (the query is not part of it). Numbers are decimal without leading
//! zeros. [`PriceList::parse`] accepts only the canonical form (it re-encodes and compares),
//! so two gateways can never serve two spellings of one list under one hash.
//!
//! A fixed or JSON-RPC route's price is known from the request ([`Pricing::for_request`]: a
//! JSON-RPC batch costs the sum of its calls); a token route's comes from the usage the
//! answer reports ([`TokenPrices::price`]).

use sha2::{Digest, Sha256};

use crate::WireError;

const WHAT: &str = "price list";
const HEADER_LINE: &str = "nullgate-price-list 1";

/// Most cost classes a vault has (PROTOCOL §2).
pub const MAX_CLASSES: usize = 8;

/// Longest price list accepted, in bytes.
pub const MAX_PRICE_LIST_LEN: usize = 64 << 10;

/// Most methods one JSON-RPC route prices.
pub const MAX_RPC_METHODS: usize = 512;

/// Longest JSON-RPC method name in a price list.
pub const MAX_RPC_METHOD_LEN: usize = 128;

/// How one route is charged.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Pricing {
    /// The same charge for every call.
    Fixed {
        /// Credit units per call.
        credits: u64,
    },
    /// Per token of the usage the answer reports.
    Tokens(TokenPrices),
    /// Per JSON-RPC method; a batch costs the sum of its calls.
    JsonRpc(MethodPrices),
}

/// Which API's usage report a token route reads (each names its fields and its stream
/// events differently).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenApi {
    /// `openai-tokens`: OpenAI-compatible chat completions and embeddings
    /// (`usage.prompt_tokens`, `usage.completion_tokens`; a stream's final usage chunk).
    OpenAiChat,
    /// `responses-tokens`: the OpenAI Responses API (`usage.input_tokens`,
    /// `usage.output_tokens`; a stream's `response.completed` event).
    OpenAiResponses,
    /// `anthropic-tokens`: Anthropic Messages (`usage.input_tokens` plus the cache
    /// tokens, `usage.output_tokens`; a stream's `message_start` and the cumulative
    /// `message_delta`).
    Anthropic,
}

impl TokenApi {
    /// The price list keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai-tokens",
            Self::OpenAiResponses => "responses-tokens",
            Self::Anthropic => "anthropic-tokens",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        [Self::OpenAiChat, Self::OpenAiResponses, Self::Anthropic]
            .into_iter()
            .find(|api| api.keyword() == word)
    }
}

/// A token route's prices.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenPrices {
    /// Whose usage report is read.
    pub api: TokenApi,
    /// Credit units per input (prompt) token.
    pub input: u64,
    /// Credit units per output (completion) token.
    pub output: u64,
}

impl TokenPrices {
    /// The raw price of a call with `usage` (saturating). Clamp it with
    /// [`PriceList::charge`].
    pub fn price(&self, usage: Usage) -> u64 {
        self.input
            .saturating_mul(usage.input_tokens)
            .saturating_add(self.output.saturating_mul(usage.output_tokens))
    }
}

/// Token usage as an upstream reports it, whatever its API calls the fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
}

/// A JSON-RPC route's per-method prices, sorted by name, each name once.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MethodPrices(Vec<(String, u64)>);

/// Why a request body cannot be priced on its route (refused before anything is reserved).
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Unpriced {
    /// The body is not a JSON-RPC request object or a non-empty array of them.
    #[error("the body is not a JSON-RPC request or a non-empty batch of them")]
    NotJsonRpc,
    /// A call names a method the price list does not price.
    #[error("a JSON-RPC method in the request is not in this gateway's price list")]
    UnknownMethod,
}

impl MethodPrices {
    /// The prices, sorted by method name; a name listed twice or an invalid one is refused.
    pub fn new(mut methods: Vec<(String, u64)>) -> Result<Self, WireError> {
        methods.sort();
        if methods.is_empty() || methods.len() > MAX_RPC_METHODS {
            return Err(WireError::syntax(
                WHAT,
                format!(
                    "a json-rpc route prices {} methods; 1 to {MAX_RPC_METHODS}",
                    methods.len()
                ),
            ));
        }
        for pair in methods.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(WireError::syntax(
                    WHAT,
                    format!("json-rpc method {} listed twice", pair[0].0),
                ));
            }
        }
        for (name, _) in &methods {
            if name.is_empty()
                || name.len() > MAX_RPC_METHOD_LEN
                || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
            {
                return Err(WireError::syntax(
                    WHAT,
                    format!(
                        "json-rpc method {name:?} must be 1 to {MAX_RPC_METHOD_LEN} visible \
                         ASCII characters without ="
                    ),
                ));
            }
        }
        Ok(Self(methods))
    }

    /// Every `(method, credits)`, sorted by method.
    pub fn methods(&self) -> &[(String, u64)] {
        &self.0
    }

    /// The price of one call to `method`.
    pub fn get(&self, method: &str) -> Option<u64> {
        self.0
            .binary_search_by(|(name, _)| name.as_str().cmp(method))
            .ok()
            .map(|at| self.0[at].1)
    }

    /// The price of a JSON-RPC body: one call, or a batch priced as the sum of its calls
    /// (saturating). Any call to an unpriced method refuses the whole body.
    pub fn price_of(&self, body: &[u8]) -> Result<u64, Unpriced> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| Unpriced::NotJsonRpc)?;
        let call = |call: &serde_json::Value| {
            let method = call
                .get("method")
                .and_then(|m| m.as_str())
                .ok_or(Unpriced::NotJsonRpc)?;
            self.get(method).ok_or(Unpriced::UnknownMethod)
        };
        match &value {
            serde_json::Value::Array(calls) if !calls.is_empty() => calls
                .iter()
                .try_fold(0u64, |sum, c| Ok(sum.saturating_add(call(c)?))),
            serde_json::Value::Object(_) => call(&value),
            _ => Err(Unpriced::NotJsonRpc),
        }
    }
}

/// What a request costs, as far as the request itself tells.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RequestPrice {
    /// Known before forwarding: a fixed route's price, or a JSON-RPC body's.
    Known(u64),
    /// Priced by the usage the answer reports.
    Tokens(TokenPrices),
}

impl Pricing {
    /// The price of a request with `body` on this route: a fixed route's, a JSON-RPC
    /// body's sum, or the token prices its answer will be charged at.
    pub fn for_request(&self, body: &[u8]) -> Result<RequestPrice, Unpriced> {
        match self {
            Self::Fixed { credits } => Ok(RequestPrice::Known(*credits)),
            Self::JsonRpc(methods) => methods.price_of(body).map(RequestPrice::Known),
            Self::Tokens(prices) => Ok(RequestPrice::Tokens(*prices)),
        }
    }

    /// The token prices, for a token route.
    pub fn tokens(&self) -> Option<TokenPrices> {
        match self {
            Self::Tokens(prices) => Some(*prices),
            _ => None,
        }
    }
}

/// One priced route.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Route {
    /// The method, upper case.
    pub method: String,
    /// The exact path.
    pub path: String,
    /// How it is charged.
    pub pricing: Pricing,
}

/// A validated price list in canonical form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PriceList {
    classes: Vec<u64>,
    floor_fee: u64,
    signed_headers: Vec<String>,
    routes: Vec<Route>,
}

impl PriceList {
    /// Builds a price list, sorting headers and routes into canonical order and checking
    /// every rule of the grammar.
    pub fn new(
        classes: Vec<u64>,
        floor_fee: u64,
        mut signed_headers: Vec<String>,
        mut routes: Vec<Route>,
    ) -> Result<Self, WireError> {
        signed_headers
            .iter_mut()
            .for_each(|h| h.make_ascii_lowercase());
        signed_headers.sort();
        routes
            .iter_mut()
            .for_each(|r| r.method.make_ascii_uppercase());
        routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        let list = Self {
            classes,
            floor_fee,
            signed_headers,
            routes,
        };
        list.validate()?;
        Ok(list)
    }

    fn validate(&self) -> Result<(), WireError> {
        let err = |detail: String| Err(WireError::syntax(WHAT, detail));
        if self.classes.is_empty() || self.classes.len() > MAX_CLASSES {
            return err(format!(
                "{} cost classes; a vault has 1 to {MAX_CLASSES}",
                self.classes.len()
            ));
        }
        if self.classes.windows(2).any(|w| w[0] >= w[1]) {
            return err("cost classes must be strictly increasing".into());
        }
        if self.floor_fee == 0 || self.floor_fee > self.classes[0] {
            return err(format!(
                "floor fee {} must be between 1 and the smallest class {}",
                self.floor_fee, self.classes[0]
            ));
        }
        for pair in self.signed_headers.windows(2) {
            if pair[0] == pair[1] {
                return err(format!("signed header {} listed twice", pair[0]));
            }
        }
        for header in &self.signed_headers {
            if header.is_empty() || !header.bytes().all(is_token_char) {
                return err(format!("signed header {header:?} is not a header name"));
            }
            if header == "authorization" {
                return err("the authorization header carries the credential; it is never signed or forwarded".into());
            }
        }
        for pair in self.routes.windows(2) {
            if pair[0].path == pair[1].path && pair[0].method == pair[1].method {
                return err(format!(
                    "route {} {} listed twice",
                    pair[0].method, pair[0].path
                ));
            }
        }
        let max = self.max_class();
        for route in &self.routes {
            if route.method.is_empty() || !route.method.bytes().all(|b| b.is_ascii_uppercase()) {
                return err(format!("method {:?} is not an HTTP method", route.method));
            }
            if !route.path.starts_with('/')
                || route.path.contains('?')
                || !route.path.bytes().all(|b| b.is_ascii_graphic())
            {
                return err(format!(
                    "path {:?} must start with / and hold no query or spaces",
                    route.path
                ));
            }
            match &route.pricing {
                Pricing::Fixed { credits } if *credits < self.floor_fee || *credits > max => {
                    return err(format!(
                        "{} {} costs {credits}, outside [floor {}, C_max {max}]",
                        route.method, route.path, self.floor_fee
                    ));
                }
                Pricing::JsonRpc(methods) => {
                    if let Some((name, credits)) = methods.0.iter().find(|(_, c)| *c > max) {
                        return err(format!(
                            "{} {} prices {name} at {credits}, above C_max {max}",
                            route.method, route.path
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Parses the canonical form; any other spelling of a valid list is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_PRICE_LIST_LEN {
            return Err(WireError::Length {
                what: WHAT,
                expected: MAX_PRICE_LIST_LEN,
                got: bytes.len(),
            });
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| WireError::syntax(WHAT, "not ASCII text"))?;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(WireError::syntax(WHAT, "the last line must end in \\n"));
        };
        let mut lines = body.split('\n');
        if lines.next() != Some(HEADER_LINE) {
            return Err(WireError::syntax(
                WHAT,
                format!("must start with `{HEADER_LINE}`"),
            ));
        }
        let mut classes = None;
        let mut floor = None;
        let mut headers = Vec::new();
        let mut routes = Vec::new();
        for (number, line) in lines.enumerate() {
            let at =
                |detail: &str| WireError::syntax(WHAT, format!("line {}: {detail}", number + 2));
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["classes", values @ ..] if classes.is_none() => {
                    classes = Some(
                        values
                            .iter()
                            .map(|v| number_of(v).ok_or_else(|| at("not a number")))
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                ["floor", value] if floor.is_none() => {
                    floor = Some(number_of(value).ok_or_else(|| at("not a number"))?);
                }
                ["signed-header", name] => headers.push((*name).to_owned()),
                ["route", method, path, "fixed", credits] => routes.push(Route {
                    method: (*method).to_owned(),
                    path: (*path).to_owned(),
                    pricing: Pricing::Fixed {
                        credits: number_of(credits).ok_or_else(|| at("not a number"))?,
                    },
                }),
                ["route", method, path, keyword, input, output]
                    if TokenApi::from_keyword(keyword).is_some() =>
                {
                    routes.push(Route {
                        method: (*method).to_owned(),
                        path: (*path).to_owned(),
                        pricing: Pricing::Tokens(TokenPrices {
                            api: TokenApi::from_keyword(keyword).expect("matched above"),
                            input: number_of(input).ok_or_else(|| at("not a number"))?,
                            output: number_of(output).ok_or_else(|| at("not a number"))?,
                        }),
                    })
                }
                ["route", method, path, "json-rpc", methods @ ..] => {
                    let methods = methods
                        .iter()
                        .map(|pair| {
                            let (name, credits) = pair
                                .split_once('=')
                                .ok_or_else(|| at("a json-rpc price is <method>=<credits>"))?;
                            let credits = number_of(credits).ok_or_else(|| at("not a number"))?;
                            Ok((name.to_owned(), credits))
                        })
                        .collect::<Result<Vec<_>, WireError>>()?;
                    routes.push(Route {
                        method: (*method).to_owned(),
                        path: (*path).to_owned(),
                        pricing: Pricing::JsonRpc(MethodPrices::new(methods)?),
                    })
                }
                _ => {
                    return Err(at(
                        "not a line of the price list grammar (classes, floor, signed-header, route)",
                    ));
                }
            }
        }
        let list = Self::new(
            classes.ok_or_else(|| WireError::syntax(WHAT, "no `classes` line"))?,
            floor.ok_or_else(|| WireError::syntax(WHAT, "no `floor` line"))?,
            headers,
            routes,
        )?;
        if list.to_bytes() != bytes {
            return Err(WireError::syntax(
                WHAT,
                "valid but not canonical (order, case, spacing or number spelling differs)",
            ));
        }
        Ok(list)
    }

    /// The canonical bytes: what the gateway serves and `priceListHash` hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        out.push_str(HEADER_LINE);
        out.push('\n');
        out.push_str("classes");
        for class in &self.classes {
            out.push_str(&format!(" {class}"));
        }
        out.push('\n');
        out.push_str(&format!("floor {}\n", self.floor_fee));
        for header in &self.signed_headers {
            out.push_str(&format!("signed-header {header}\n"));
        }
        for route in &self.routes {
            let pricing = match &route.pricing {
                Pricing::Fixed { credits } => format!("fixed {credits}"),
                Pricing::Tokens(prices) => {
                    format!(
                        "{} {} {}",
                        prices.api.keyword(),
                        prices.input,
                        prices.output
                    )
                }
                Pricing::JsonRpc(methods) => {
                    let mut line = String::from("json-rpc");
                    for (name, credits) in methods.methods() {
                        line.push_str(&format!(" {name}={credits}"));
                    }
                    line
                }
            };
            out.push_str(&format!(
                "route {} {} {pricing}\n",
                route.method, route.path
            ));
        }
        out.into_bytes()
    }

    /// `priceListHash`: SHA-256 of the canonical bytes.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }

    /// The cost classes `C_1 < … < C_max`.
    pub fn classes(&self) -> &[u64] {
        &self.classes
    }

    /// `C_max`.
    pub fn max_class(&self) -> u64 {
        *self.classes.last().expect("validated: at least one class")
    }

    /// `C_c` of class index `index`, if there is such a class.
    pub fn class(&self, index: u8) -> Option<u64> {
        self.classes.get(usize::from(index)).copied()
    }

    /// The smallest class that covers `cost`, as `(index, C_c)`.
    pub fn class_for(&self, cost: u64) -> Option<(u8, u64)> {
        self.classes
            .iter()
            .position(|&class| class >= cost)
            .map(|index| (index as u8, self.classes[index]))
    }

    /// `Δ_min`.
    pub fn floor_fee(&self) -> u64 {
        self.floor_fee
    }

    /// The signed (and forwarded) request headers, lowercase.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// Every priced route.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The pricing of `method path` (path without query), if the route is priced.
    pub fn route(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method))
    }

    /// The charge `Δ` for a call priced `raw` under class cap `cap`:
    /// `Δ_min ≤ Δ ≤ C_c` (PROTOCOL §6 steps 4–5).
    pub fn charge(&self, raw: u64, cap: u64) -> u64 {
        raw.max(self.floor_fee).min(cap)
    }
}

fn number_of(text: &str) -> Option<u64> {
    if text.is_empty()
        || (text.len() > 1 && text.starts_with('0'))
        || !text.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    text.parse().ok()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PriceList {
        PriceList::new(
            vec![100, 1_000, 10_000],
            10,
            vec!["Content-Type".into()],
            vec![
                Route {
                    method: "post".into(),
                    path: "/v1/chat/completions".into(),
                    pricing: Pricing::Tokens(TokenPrices {
                        api: TokenApi::OpenAiChat,
                        input: 1,
                        output: 3,
                    }),
                },
                Route {
                    method: "GET".into(),
                    path: "/v1/models".into(),
                    pricing: Pricing::Fixed { credits: 10 },
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn canonical_round_trip_and_lookups() {
        let list = sample();
        let bytes = list.to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "nullgate-price-list 1\nclasses 100 1000 10000\nfloor 10\nsigned-header content-type\n\
             route POST /v1/chat/completions openai-tokens 1 3\nroute GET /v1/models fixed 10\n"
        );
        assert_eq!(PriceList::parse(&bytes).unwrap(), list);
        assert_eq!(list.class_for(101), Some((1, 1_000)));
        assert_eq!(list.class_for(10_001), None);
        assert_eq!(
            list.route("post", "/v1/chat/completions")
                .unwrap()
                .pricing
                .tokens()
                .unwrap()
                .price(Usage {
                    input_tokens: 5,
                    output_tokens: 7
                }),
            26
        );
        assert_eq!(list.charge(3, 100), 10);
        assert_eq!(list.charge(500, 100), 100);
    }

    #[test]
    fn refuses_non_canonical_and_invalid_lists() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let cases = [
            good.replace("classes 100 1000 10000", "classes 100  1000 10000"),
            good.replace("floor 10", "floor 010"),
            good.replace("floor 10", "floor 0"),
            good.replace("floor 10", "floor 101"),
            good.replace("classes 100 1000 10000", "classes 1000 100"),
            good.replace("content-type", "Content-Type"),
            good.replace(
                "route GET /v1/models fixed 10\n",
                "route GET /v1/models fixed 5\n",
            ),
            good.replace("route GET /v1/models fixed 10\n", ""),
            good.trim_end().to_owned(),
            format!("{good}route GET /v1/models fixed 10\n"),
            good.replace("/v1/models", "/v1/models?x=1"),
            good.replace("nullgate-price-list 1", "nullgate-price-list 2"),
            good.replace("signed-header content-type", "signed-header authorization"),
            format!("{good}bogus\n"),
        ];
        // The one with the GET route removed is valid and canonical: it must parse.
        for (i, case) in cases.iter().enumerate() {
            let result = PriceList::parse(case.as_bytes());
            if i == 7 {
                assert!(result.is_ok(), "case {i}");
            } else {
                assert!(result.is_err(), "case {i} was accepted: {case:?}");
            }
        }
        // Routes out of order are valid content but not canonical.
        let swapped = good.replace(
            "route POST /v1/chat/completions openai-tokens 1 3\nroute GET /v1/models fixed 10\n",
            "route GET /v1/models fixed 10\nroute POST /v1/chat/completions openai-tokens 1 3\n",
        );
        assert!(PriceList::parse(swapped.as_bytes()).is_err());
    }

    fn every_mode() -> PriceList {
        let tokens = |api| {
            Pricing::Tokens(TokenPrices {
                api,
                input: 2,
                output: 5,
            })
        };
        PriceList::new(
            vec![100, 1_000],
            10,
            vec![],
            vec![
                Route {
                    method: "POST".into(),
                    path: "/rpc".into(),
                    pricing: Pricing::JsonRpc(
                        MethodPrices::new(vec![
                            ("eth_call".into(), 30),
                            ("eth_blockNumber".into(), 1),
                        ])
                        .unwrap(),
                    ),
                },
                Route {
                    method: "POST".into(),
                    path: "/v1/messages".into(),
                    pricing: tokens(TokenApi::Anthropic),
                },
                Route {
                    method: "POST".into(),
                    path: "/v1/responses".into(),
                    pricing: tokens(TokenApi::OpenAiResponses),
                },
                Route {
                    method: "POST".into(),
                    path: "/v1/embeddings".into(),
                    pricing: tokens(TokenApi::OpenAiChat),
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn every_pricing_mode_round_trips() {
        let list = every_mode();
        let text = String::from_utf8(list.to_bytes()).unwrap();
        assert_eq!(
            text,
            "nullgate-price-list 1\nclasses 100 1000\nfloor 10\n\
             route POST /rpc json-rpc eth_blockNumber=1 eth_call=30\n\
             route POST /v1/embeddings openai-tokens 2 5\n\
             route POST /v1/messages anthropic-tokens 2 5\n\
             route POST /v1/responses responses-tokens 2 5\n"
        );
        assert_eq!(PriceList::parse(text.as_bytes()).unwrap(), list);
        let refused = [
            // Methods out of order, twice, priced above C_max, without a price, none.
            text.replace(
                "eth_blockNumber=1 eth_call=30",
                "eth_call=30 eth_blockNumber=1",
            ),
            text.replace("eth_call=30", "eth_blockNumber=30"),
            text.replace("eth_call=30", "eth_call=1001"),
            text.replace("eth_call=30", "eth_call"),
            text.replace("eth_call=30", "eth_call=030"),
            text.replace(" json-rpc eth_blockNumber=1 eth_call=30", " json-rpc"),
            text.replace("anthropic-tokens", "claude-tokens"),
        ];
        for (i, case) in refused.iter().enumerate() {
            assert!(
                PriceList::parse(case.as_bytes()).is_err(),
                "case {i} was accepted: {case:?}"
            );
        }
    }

    #[test]
    fn json_rpc_bodies_are_priced_per_method_and_batches_as_the_sum() {
        let list = every_mode();
        let rpc = &list.route("POST", "/rpc").unwrap().pricing;
        let price = |body: &str| rpc.for_request(body.as_bytes());
        assert_eq!(
            price(r#"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]}"#),
            Ok(RequestPrice::Known(30))
        );
        assert_eq!(
            price(
                r#"[{"jsonrpc":"2.0","id":1,"method":"eth_call"},
                    {"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},
                    {"jsonrpc":"2.0","method":"eth_blockNumber"}]"#
            ),
            Ok(RequestPrice::Known(32))
        );
        assert_eq!(
            price(
                r#"[{"jsonrpc":"2.0","id":1,"method":"eth_call"},{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction"}]"#
            ),
            Err(Unpriced::UnknownMethod)
        );
        for body in ["[]", "{}", "not json", r#"{"method":7}"#, "[1]", "7"] {
            assert_eq!(price(body), Err(Unpriced::NotJsonRpc), "{body}");
        }
        let fixed = Pricing::Fixed { credits: 12 };
        assert_eq!(fixed.for_request(b"anything"), Ok(RequestPrice::Known(12)));
        let tokens = &list.route("POST", "/v1/messages").unwrap().pricing;
        assert_eq!(
            tokens.for_request(b"{}"),
            Ok(RequestPrice::Tokens(tokens.tokens().unwrap()))
        );
    }
}
