//! # nullgate-client: paying for API calls without being recognised
//!
//! Everything that runs on the user's machine (`docs/spec/PROTOCOL.md` §3–§5, §9):
//!
//! - [`wallet`]: the wallet file (notes, their private states), written atomically and
//!   locked against a second process, and the per-note [`journal`] that makes a request
//!   survive a crash: a request is journalled, fsynced, before any byte of it leaves.
//! - [`trust`]: the deployment and the note tree, each checked against the chain.
//! - [`client`]: the core: pre-generated credentials, the journalled request, receipts
//!   checked before the state advances.
//! - [`leave`]: exits, mutual closes and restoring a note from its secret (§8, §6.7).
//! - [`paid`]: what a paid call is, as the proxy hands it to the core and gets it back.
//! - [`proxy`]: `nullgate proxy`, the server on 127.0.0.1 that agents (OpenAI, Anthropic,
//!   Ollama and JSON-RPC clients) point their base URL at; it strips what identifies the
//!   user and picks the cost class.
//! - [`mcp`]: `nullgate mcp`, the same calls as MCP tools for an agent host.
//!
//! This crate never logs request contents, prompts or anything that links requests.

pub mod client;
pub mod journal;
pub mod leave;
pub mod mcp;
pub mod paid;
pub mod proxy;
pub mod trust;
pub mod wallet;
