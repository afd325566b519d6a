//! Relaying an LLM API's SSE stream as it arrives (PROTOCOL §6 steps 5–6): events pass
//! through one by one; the usage chunk the gateway asked an OpenAI chat upstream for is
//! dropped if the client did not ask for it; the charge is tracked so that a stream that
//! would exceed its class cap is cut off at it; the stream ends with `event:
//! nullgate-receipt`.
//!
//! Until the final usage arrives the running estimate is a lower bound ([`Meter`]): the
//! usage reported so far, and one output token per content event (every API sends at least
//! one token per content event), so a stream is never cut off before it reaches its cap.
//! The final usage then fixes the exact charge.

use bytes::Bytes;
use nullgate_protocol::price::TokenPrices;

use crate::usage::{EventKind, Meter};

/// The event a stream ends with, carrying the receipt (the client strips it).
pub const RECEIPT_EVENT: &str = "nullgate-receipt";

/// The event that says a stream was cut off at its class cap.
pub const CUTOFF_EVENT: &str = "nullgate-cutoff";

/// Longest single SSE event accepted from the upstream.
pub const MAX_EVENT: usize = 1 << 20;

/// The relay's state over one stream.
pub struct SseRelay {
    buffer: Vec<u8>,
    prices: TokenPrices,
    cap: u64,
    drop_usage_chunk: bool,
    meter: Meter,
    cut_off: bool,
}

/// What to do with bytes from the upstream.
#[derive(Debug, PartialEq, Eq)]
pub enum Relayed {
    /// Forward these events (possibly none yet).
    Forward(Vec<Bytes>),
    /// Forward these, then stop: the cap is reached.
    CutOff(Vec<Bytes>),
}

impl SseRelay {
    /// A relay for a route priced `prices`, capped at `cap` credits. `client_wants_usage`
    /// is whether an OpenAI chat client asked for the usage chunk itself.
    pub fn new(prices: TokenPrices, cap: u64, client_wants_usage: bool) -> Self {
        Self {
            buffer: Vec::new(),
            prices,
            cap,
            drop_usage_chunk: !client_wants_usage,
            meter: Meter::new(prices.api),
            cut_off: false,
        }
    }

    /// Takes bytes from the upstream and returns the complete events to forward.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Relayed, &'static str> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.buffer) {
            let event: Vec<u8> = self.buffer.drain(..end).collect();
            if let Some(event) = self.take_event(event) {
                out.push(event);
            }
            if self.meter.usage().is_none()
                && self.prices.price(self.meter.lower_bound()) >= self.cap
            {
                self.cut_off = true;
                return Ok(Relayed::CutOff(out));
            }
        }
        if self.buffer.len() > MAX_EVENT {
            return Err("an upstream stream event exceeds the size limit");
        }
        Ok(Relayed::Forward(out))
    }

    /// Whatever is left when the upstream ends (an unterminated last event).
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.buffer.is_empty() {
            return None;
        }
        let mut event = std::mem::take(&mut self.buffer);
        event.extend_from_slice(b"\n\n");
        self.take_event(event)
    }

    fn take_event(&mut self, event: Vec<u8>) -> Option<Bytes> {
        let text = String::from_utf8_lossy(&event);
        let mut usage_only = false;
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                continue;
            };
            usage_only |= self.meter.observe(&value) == EventKind::UsageOnly;
        }
        if usage_only && self.drop_usage_chunk {
            return None;
        }
        Some(Bytes::from(crate::timestamps::coarsen(&event).into_owned()))
    }

    /// The raw price of what was streamed: exact from the final usage; without one (the
    /// upstream sent none, or the stream was cut off) the cap.
    pub fn raw_price(&self) -> u64 {
        match self.meter.usage() {
            Some(usage) if !self.cut_off => self.prices.price(usage),
            _ => self.cap,
        }
    }

    /// Whether the stream was cut off at the cap.
    pub fn was_cut_off(&self) -> bool {
        self.cut_off
    }

    /// Whether the exact price (from usage) is above the cap: then the charge is the cap and
    /// the client is told.
    pub fn over_cap(&self) -> bool {
        self.meter
            .usage()
            .is_some_and(|usage| self.prices.price(usage) > self.cap)
    }
}

/// The end of the first complete event (after its blank line), if any.
fn event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The final event carrying the receipt.
pub fn receipt_event(receipt_header: &str) -> Bytes {
    Bytes::from(format!(
        "event: {RECEIPT_EVENT}\ndata: {receipt_header}\n\n"
    ))
}

/// The event saying the stream was cut off at its class cap.
pub fn cutoff_event(cap: u64) -> Bytes {
    Bytes::from(format!(
        "event: {CUTOFF_EVENT}\ndata: {{\"reason\":\"the response reached the credential's class cap of {cap} credits and was cut off; ask with a larger max_tokens class\"}}\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str) -> String {
        format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n"
        )
    }
    const TOKENS: TokenPrices = TokenPrices {
        api: nullgate_protocol::price::TokenApi::OpenAiChat,
        input: 1,
        output: 2,
    };
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n";

    #[test]
    fn relays_whole_events_and_drops_the_usage_chunk_unless_asked() {
        let pricing = TOKENS;
        let mut relay = SseRelay::new(pricing, 1_000, false);
        let stream = format!(
            "{}{}{}{USAGE}data: [DONE]\n\n",
            chunk("a"),
            chunk("b"),
            chunk("c")
        );
        let (first, second) = stream.as_bytes().split_at(30);
        let mut events = Vec::new();
        for part in [first, second] {
            match relay.push(part).unwrap() {
                Relayed::Forward(e) => events.extend(e),
                Relayed::CutOff(_) => panic!("not at the cap"),
            }
        }
        assert_eq!(
            events.len(),
            4,
            "3 chunks and [DONE]; the usage chunk dropped"
        );
        assert!(events.iter().all(|e| !e.windows(5).any(|w| w == b"usage")));
        assert_eq!(relay.raw_price(), 5 + 3 * 2);

        let mut asked = SseRelay::new(pricing, 1_000, true);
        let Relayed::Forward(events) = asked.push(stream.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn cuts_off_at_the_cap() {
        let pricing = TOKENS;
        let mut relay = SseRelay::new(pricing, 4, false);
        let stream = format!("{}{}{}", chunk("a"), chunk("b"), chunk("c"));
        match relay.push(stream.as_bytes()).unwrap() {
            Relayed::CutOff(events) => assert_eq!(events.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(relay.was_cut_off());
        assert_eq!(relay.raw_price(), 4);
    }

    #[test]
    fn bounds_a_single_event() {
        let mut relay = SseRelay::new(TOKENS, 10, false);
        assert!(relay.push(&vec![b'x'; MAX_EVENT + 1]).is_err());
    }
}
