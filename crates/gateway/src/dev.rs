//! A DEV deployment on the embedded chain: a vault with DEV keys (anyone can forge proofs
//! under them; labelled so on chain by `devKeys`), the demo price list, a state key and an
//! OHTTP key derived from public seeds. What `nullgate demo` and the end-to-end tests run;
//! never for real money.

use std::{sync::Arc, time::Duration};

use nullgate_chain::{Address, B256, EmbeddedLedger, KeyHashes, Ledger, Vault, VaultParams};
use nullgate_net::ohttp::KeyRing;
use nullgate_protocol::price::{PriceList, Pricing, Route, TokenApi, TokenPrices};
use nullgate_zk::{
    curve::Scalar,
    groth16::{ProverKey, VerifierKey},
    schnorr::SecretKey,
};

use crate::{
    charge::StateSigner, config::Limits, service::GatewayParts, store::NullifierStore,
    upstream::Upstream,
};

/// The public seed of the DEV OHTTP key.
pub const DEV_OHTTP_SEED: &[u8] = b"nullgate/v1/dev-ohttp-key-seed!!";

/// The authority DEV clients name in sealed requests.
pub const DEV_AUTHORITY: &str = "gateway.nullgate.test";

/// The demo's price list: classes 500 < 2,000 < 8,000 < 32,000 credits, floor 5; chat
/// completions, Responses and Anthropic Messages 1 credit per input token and 4 per output
/// token, embeddings 1 per input token; the model list 5.
pub fn demo_price_list() -> PriceList {
    let tokens = |path: &str, api, output| Route {
        method: "POST".into(),
        path: path.into(),
        pricing: Pricing::Tokens(TokenPrices {
            api,
            input: 1,
            output,
        }),
    };
    PriceList::new(
        vec![500, 2_000, 8_000, 32_000],
        5,
        vec!["content-type".into()],
        vec![
            tokens("/v1/chat/completions", TokenApi::OpenAiChat, 4),
            tokens("/v1/embeddings", TokenApi::OpenAiChat, 0),
            tokens("/v1/messages", TokenApi::Anthropic, 4),
            tokens("/v1/responses", TokenApi::OpenAiResponses, 4),
            Route {
                method: "GET".into(),
                path: "/v1/models".into(),
                pricing: Pricing::Fixed { credits: 5 },
            },
        ],
    )
    .expect("the demo price list is valid")
}

/// The DEV state key (from a public scalar).
pub fn dev_state_key() -> SecretKey {
    SecretKey::from_scalar(Scalar::from(0x6e75_6c6c_6761_7465u64)).expect("non-zero")
}

/// The DEV OHTTP key ring.
pub fn dev_ohttp_keys() -> KeyRing {
    KeyRing::derive(1, DEV_OHTTP_SEED, Duration::from_secs(24 * 3600))
        .expect("a fixed seed derives")
}

/// A vault deployed on an embedded chain, with everything a gateway needs to serve it.
pub struct DevDeployment {
    /// The chain.
    pub ledger: Arc<EmbeddedLedger>,
    /// The vault.
    pub vault: Arc<Vault>,
    /// The operator (deployer, treasury, slasher), a funded dev account.
    pub operator: Address,
    /// The request proving key the vault pins.
    pub request_key: Arc<ProverKey>,
    /// The exit verifying key the vault pins.
    pub exit_key: VerifierKey,
    /// The price list the vault pins.
    pub price_list: PriceList,
}

impl DevDeployment {
    /// Deploys a vault for `request_key` and `exit_key` (a DEV setup) with `price_list`.
    pub async fn deploy(
        request_key: Arc<ProverKey>,
        exit_key: &ProverKey,
        price_list: PriceList,
    ) -> Result<Self, nullgate_chain::ChainError> {
        let ledger = Arc::new(EmbeddedLedger::new());
        let operator = ledger.accounts()[0];
        let mut params = VaultParams::dev(
            KeyHashes::of(&request_key, exit_key)?,
            dev_state_key().public_key(),
            operator,
        );
        params.cost_classes = price_list.classes().to_vec();
        params.floor_fee = price_list.floor_fee();
        params.min_deposit = price_list.max_class();
        params.price_list_hash = B256::from(price_list.hash());
        params.ohttp_keys_hash = B256::from(
            dev_ohttp_keys()
                .served_hash()
                .expect("a derived key configuration encodes"),
        );
        let chain: Arc<dyn Ledger> = ledger.clone();
        let vault = Arc::new(Vault::deploy(chain, operator, &params).await?);
        Ok(Self {
            ledger,
            vault,
            operator,
            request_key,
            exit_key: exit_key.verifier_key(),
            price_list,
        })
    }

    /// The parts of a gateway for this deployment.
    pub fn gateway_parts(
        &self,
        store: Arc<dyn NullifierStore>,
        upstream: Upstream,
        limits: Limits,
    ) -> GatewayParts {
        GatewayParts {
            vault: self.vault.clone(),
            from_block: 0,
            price_list: self.price_list.clone(),
            signer: StateSigner {
                number: 1,
                key: dev_state_key(),
            },
            verifier_key: self.request_key.verifier_key(),
            exit_verifier_key: self.exit_key.clone(),
            // The operator is the DEV vault's clearance signer too.
            clearance_signer: Some(nullgate_chain::dev_signers(1).remove(0)),
            store,
            upstream,
            ohttp: dev_ohttp_keys(),
            authority: DEV_AUTHORITY.into(),
            limits,
            slasher: Some(self.operator),
        }
    }
}
