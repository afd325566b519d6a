//! What the client checks before it proves or pays anything (PROTOCOL §2, §3): the vault's
//! parameters from the chain, the keys it proves with against the pinned hashes, the price
//! list against `priceListHash`, and the note tree against `(depositCount,
//! depositsDigest)` at the newest finalised block.

use nullgate_chain::{BlockRef, Deposit, U256, Vault, digest};
use nullgate_net::{HttpRequest, IsolationId, Transport};
use nullgate_protocol::{
    deployment::Deployment,
    price::PriceList,
    tree::decode_leaves,
    well_known::{TREE_PATH, WELL_KNOWN_PATH, WellKnown},
};
use nullgate_zk::{
    Fr,
    field::fr_to_bytes,
    groth16::{ProverKey, key_file_hash, key_hash},
    note::leaf,
    tree::NoteTree,
};

/// Why the client refuses a deployment or a tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The chain could not be read.
    #[error("chain: {0}")]
    Chain(#[from] nullgate_chain::ChainError),
    /// The gateway could not be reached or answered nonsense.
    #[error("gateway: {0}")]
    Gateway(String),
    /// A value differs from what the chain pins: the client refuses to use it.
    #[error("refusing the deployment: {0}")]
    Mismatch(String),
}

/// A deployment every value of which was checked against the chain.
#[derive(Clone, Debug)]
pub struct Trusted {
    /// The parameters as the chain reports them.
    pub deployment: Deployment,
    /// The price list, hashing to `priceListHash`.
    pub prices: PriceList,
}

/// Reads the vault's parameters and checks `dom`, the proving key against both pinned key
/// hashes, and the gateway's well-known document's price list against `priceListHash`.
/// The OHTTP key is pinned by the transport (`ohttpKeysHash`). DEV keys are warned about
/// loudly: anyone can forge proofs under them.
pub async fn trust<T: Transport>(
    vault: &Vault,
    prover: &ProverKey,
    transport: &T,
    authority: &str,
) -> Result<Trusted, TrustError> {
    let deployment = vault.summary().await?.deployment()?;
    deployment
        .check_derived()
        .map_err(|e| TrustError::Mismatch(e.to_string()))?;
    let proving =
        key_file_hash(&prover.to_file_bytes()).map_err(|e| TrustError::Mismatch(e.to_string()))?;
    if proving != deployment.request_proving_key_hash
        || key_hash(prover.verifying_key()) != deployment.request_verifying_key_hash
    {
        return Err(TrustError::Mismatch(
            "the request proving key is not the one the vault pins".into(),
        ));
    }
    if deployment.dev_keys {
        tracing::warn!(
            "this vault uses DEV keys: anyone can forge proofs under them; never deposit real money"
        );
    }
    let response = get(transport, authority, WELL_KNOWN_PATH).await?;
    let (_, prices) =
        WellKnown::parse(&response).map_err(|e| TrustError::Gateway(e.to_string()))?;
    if prices.hash() != deployment.price_list_hash {
        return Err(TrustError::Mismatch(
            "the gateway's price list does not hash to the vault's priceListHash".into(),
        ));
    }
    if prices.classes() != deployment.cost_classes.as_slice()
        || prices.floor_fee() != deployment.floor_fee
    {
        return Err(TrustError::Mismatch(
            "the price list's classes or floor fee differ from the vault's".into(),
        ));
    }
    Ok(Trusted { deployment, prices })
}

async fn get<T: Transport>(
    transport: &T,
    authority: &str,
    path: &str,
) -> Result<Vec<u8>, TrustError> {
    let request = HttpRequest::new(http::Method::GET, "https", authority, path);
    let response = transport
        .send(request, IsolationId::fresh())
        .await
        .map_err(|e| TrustError::Gateway(e.to_string()))?;
    if !response.status.is_success() {
        return Err(TrustError::Gateway(format!(
            "GET {path} answered {}",
            response.status
        )));
    }
    Ok(response.body.to_vec())
}

/// The note tree at the newest finalised block, and that block's hour.
#[derive(Clone, Debug)]
pub struct ChainView {
    /// The tree.
    pub tree: NoteTree,
    /// Its root.
    pub root: Fr,
    /// Deposits in it.
    pub count: u32,
    /// The hour of the newest finalised block (`t` of new proofs).
    pub hour: u32,
}

/// Downloads the whole leaf list from the gateway (never a single path) and accepts it only
/// if its first `depositCount` records hash to `depositsDigest` at the newest finalised
/// block.
pub async fn fetch_tree<T: Transport>(
    vault: &Vault,
    transport: &T,
    authority: &str,
) -> Result<ChainView, TrustError> {
    let finalized = vault.ledger().finalized().await?;
    let (count, onchain) = vault
        .deposit_state(BlockRef::Number(finalized.number))
        .await?;
    let bytes = get(transport, authority, TREE_PATH).await?;
    let records = decode_leaves(&bytes, 1 << 24).map_err(|e| TrustError::Gateway(e.to_string()))?;
    if records.len() < count as usize {
        return Err(TrustError::Gateway(format!(
            "the gateway serves {} deposits, the chain has {count} finalised; retry shortly",
            records.len()
        )));
    }
    let records = &records[..count as usize];
    let deposits: Vec<Deposit> = records
        .iter()
        .enumerate()
        .map(|(note_id, record)| Deposit {
            note_id: note_id as u32,
            commitment: U256::from_be_bytes(fr_to_bytes(&record.commitment)),
            amount: record.deposit,
            expiry: record.expiry,
        })
        .collect();
    if digest::of_list(&deposits) != onchain {
        return Err(TrustError::Mismatch(
            "the gateway's leaf list does not match the vault's depositsDigest".into(),
        ));
    }
    let mut tree = NoteTree::new();
    let leaves: Vec<Fr> = records
        .iter()
        .enumerate()
        .map(|(note_id, r)| leaf(note_id as u32, &r.commitment, r.deposit, r.expiry))
        .collect();
    let root = tree
        .extend(&leaves)
        .map_err(|e| TrustError::Gateway(e.to_string()))?;
    Ok(ChainView {
        tree,
        root,
        count,
        hour: u32::try_from(finalized.timestamp / 3600).unwrap_or(u32::MAX),
    })
}
