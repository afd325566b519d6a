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
//! route <METHOD> <path> fixed <credits>                 Δ_min ≤ credits ≤ C_max
//! route <METHOD> <path> openai-tokens <prompt> <completion>   credits per token
//! ```
//!
//! Routes are sorted by path, then method, each `(method, path)` once; paths match the
//! request's path exactly (the query is not part of it). Numbers are decimal without leading
//! zeros. [`PriceList::parse`] accepts only the canonical form (it re-encodes and compares),
//! so two gateways can never serve two spellings of one list under one hash.

use sha2::{Digest, Sha256};

use crate::WireError;

const WHAT: &str = "price list";
const HEADER_LINE: &str = "nullgate-price-list 1";

/// Most cost classes a vault has (PROTOCOL §2).
pub const MAX_CLASSES: usize = 8;

/// Longest price list accepted, in bytes.
pub const MAX_PRICE_LIST_LEN: usize = 64 << 10;

/// How one route is charged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pricing {
    /// The same charge for every call.
    Fixed {
        /// Credit units per call.
        credits: u64,
    },
    /// OpenAI-compatible token usage (`usage.prompt_tokens`, `usage.completion_tokens`).
    OpenAiTokens {
        /// Credit units per prompt token.
        prompt: u64,
        /// Credit units per completion token.
        completion: u64,
    },
}

/// Token usage as an OpenAI-compatible upstream reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
}

impl Pricing {
    /// The raw price of a call with `usage` (saturating; a token route without usage costs
    /// nothing here, and the floor fee applies). Clamp it with [`PriceList::charge`].
    pub fn price(&self, usage: Usage) -> u64 {
        match *self {
            Self::Fixed { credits } => credits,
            Self::OpenAiTokens { prompt, completion } => prompt
                .saturating_mul(usage.prompt_tokens)
                .saturating_add(completion.saturating_mul(usage.completion_tokens)),
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
            if let Pricing::Fixed { credits } = route.pricing
                && (credits < self.floor_fee || credits > max)
            {
                return err(format!(
                    "{} {} costs {credits}, outside [floor {}, C_max {max}]",
                    route.method, route.path, self.floor_fee
                ));
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
                ["route", method, path, "openai-tokens", prompt, completion] => {
                    routes.push(Route {
                        method: (*method).to_owned(),
                        path: (*path).to_owned(),
                        pricing: Pricing::OpenAiTokens {
                            prompt: number_of(prompt).ok_or_else(|| at("not a number"))?,
                            completion: number_of(completion).ok_or_else(|| at("not a number"))?,
                        },
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
            let pricing = match route.pricing {
                Pricing::Fixed { credits } => format!("fixed {credits}"),
                Pricing::OpenAiTokens { prompt, completion } => {
                    format!("openai-tokens {prompt} {completion}")
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
                    pricing: Pricing::OpenAiTokens {
                        prompt: 1,
                        completion: 3,
                    },
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
                .price(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 7
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
}
