//! `nullgate mcp --config proxy.toml`: the client core of `nullgate proxy` (same file), with
//! its calls offered as MCP tools on stdio instead of an HTTP port (see
//! `nullgate_client::mcp`). Add it to an agent host as the command `nullgate mcp --config
//! /path/to/proxy.toml`. Standard output carries MCP only; everything else goes to stderr.

use std::sync::Arc;

use anyhow::Context;
use nullgate_client::{client::Client, mcp::McpServer, proxy::ProxyConfig};
use nullgate_net::Transport;
use rmcp::ServiceExt;

/// Serves the MCP tools over `client` on stdin/stdout until the host closes them.
pub(crate) async fn serve_stdio<T: Transport + 'static>(
    client: Client<T>,
    config: ProxyConfig,
) -> anyhow::Result<()> {
    let server = McpServer::new(Arc::new(client.clone()), Arc::new(client), config);
    eprintln!("nullgate mcp: serving tools on stdio");
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    running.waiting().await.context("the MCP session")?;
    Ok(())
}
