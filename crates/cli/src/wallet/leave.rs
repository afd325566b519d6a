//! `nullgate wallet exit|finalize|close|restore|secrets`: leaving the vault and coming back
//! (PROTOCOL §8, §6.7, §9).
//!
//! - `exit --note S --recipient ADDR`: picks `n` from the journal, waits a random delay,
//!   proves, marks the note Exiting in the wallet and calls `initiateExit`; `--wait` then
//!   watches the window and finalises. No gateway is involved.
//! - `finalize --note S`: pays out an exit whose window has passed.
//! - `close --note S --recipient ADDR --relay URL --gateway HOST`: asks the gateway for a
//!   clearance (through the OHTTP relay, or `--proxy-config proxy.toml`'s transport) and
//!   closes at once.
//! - `restore --secrets FILE | --backup FILE --vault ADDR --relay URL --gateway HOST`: a new
//!   wallet whose notes are rebuilt from their secrets, or from a copy of a wallet file, by
//!   walking the gateway's receipts over fresh routes (from the copy's states, if given);
//!   `--proxy-config` instead of `--relay` as for `close`.
//! - `secrets`: the note secrets, one per line, for `restore`.

use std::{io::IsTerminal, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use nullgate_chain::{Address, BlockRef, Bytes, NoteStatus as ChainStatus, Vault};
use nullgate_client::{
    client::unix_now,
    leave::{
        ExitStatement, ask_clearance, plan_exit, random_delay, restore_note, state_key_number,
        time_to_exit,
    },
    wallet::{NoteEntry, NoteState, NoteStatus, Passphrase, VaultId, Wallet, WalletError},
};
use nullgate_net::ohttp::OhttpTransport;
use nullgate_protocol::deployment::Deployment;
use nullgate_zk::{
    field::{fr_from_bytes, fr_to_bytes},
    groth16::{CircuitKind, ProverKey, key_file_hash},
    keys::{DEV_SEED, dev_setup, load_prover_key},
    note,
    schnorr::PublicKey,
};

use super::{PassphraseArgs, Session, View, WalletArgs, open_wallet, print, status, unix_time};
use crate::{
    bench_zk::new_spinner,
    transport::{ChosenTransport, TransportFile},
    vault::open,
};

/// What picks and proves an exit, for `exit` and `close`.
#[derive(Debug, clap::Args)]
pub(crate) struct LeaveArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// The note (the `note` column of `nullgate wallet status`).
    #[arg(long)]
    note: usize,
    /// Who is paid.
    #[arg(long)]
    recipient: Address,
    /// The payout, credit units; default the most the exit allows.
    #[arg(long)]
    payout: Option<u64>,
    /// Declare a request that was sent but never receipted as paid at the largest class
    /// (`n = m + 1`). Without it such an exit is refused: let the proxy re-send it first.
    #[arg(long)]
    give_up_on_receipt: bool,
    /// The longest random pause before the exit leaves, so that it is not timed right after
    /// the note's last request (`0s` to skip).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    max_delay: Duration,
    /// The exit proving key from `nullgate setup` (its hash is checked against the vault).
    /// Without it: the DEV key, set up here, which only a DEV vault accepts.
    #[arg(long)]
    exit_proving_key: Option<PathBuf>,
}

/// Options of `nullgate wallet exit`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExitArgs {
    #[command(flatten)]
    leave: LeaveArgs,
    /// Stay, watch the exit window, and finalise when it ends.
    #[arg(long)]
    wait: bool,
}

/// Options of `nullgate wallet close`.
#[derive(Debug, clap::Args)]
pub(crate) struct CloseArgs {
    #[command(flatten)]
    leave: LeaveArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// How the gateway is reached: through an OHTTP relay, or as `nullgate proxy` reaches it.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {
    /// The OHTTP relay in front of the gateway.
    #[arg(
        long,
        required_unless_present = "proxy_config",
        conflicts_with = "proxy_config"
    )]
    relay: Option<reqwest::Url>,
    /// A `proxy.toml` whose `[transport]` table says how to reach the gateway (the mixnet,
    /// SOCKS5, embedded Tor, an OHTTP relay), as `nullgate proxy` does.
    #[arg(long, value_name = "PROXY_TOML")]
    proxy_config: Option<PathBuf>,
    /// The authority sealed requests name (the gateway's).
    #[arg(long)]
    gateway: String,
}

/// Options of `nullgate wallet finalize`.
#[derive(Debug, clap::Args)]
pub(crate) struct FinalizeArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// The note.
    #[arg(long)]
    note: usize,
}

/// Options of `nullgate wallet restore`.
#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// The vault's address.
    #[arg(long)]
    vault: Address,
    /// The note secrets, one per line in hex (what `nullgate wallet secrets` printed). Each
    /// note's receipts are walked from its deposit.
    #[arg(long, required_unless_present = "backup")]
    secrets: Option<PathBuf>,
    /// A copy of a wallet file (`wallet.json.bak`, say, copied elsewhere; sealed under the
    /// same passphrase as the new wallet): its notes, each walked from the state the copy
    /// holds, so fewer look-ups. With `--secrets` too, secrets the copy lacks start at their
    /// deposit.
    #[arg(long)]
    backup: Option<PathBuf>,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// The longest random pause before each receipt look-up, so that the look-ups of one
    /// note are not linked by their timing.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    max_pause: Duration,
    /// Print the status as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Leave the new wallet file unencrypted.
    #[arg(long)]
    unencrypted: bool,
}

/// Options of `nullgate wallet secrets`.
#[derive(Debug, clap::Args)]
pub(crate) struct SecretsArgs {
    /// The wallet directory.
    #[arg(long, default_value = "wallet")]
    wallet: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// A statement proven for the note `args` names, the note marked Exiting before it returns.
struct Proven {
    statement: ExitStatement,
    commitment: nullgate_zk::Fr,
}

async fn prove_and_mark(session: &mut Session, args: &LeaveArgs) -> anyhow::Result<Proven> {
    let slot = args.note;
    let note = *session
        .wallet
        .note(slot)
        .with_context(|| format!("the wallet has no note {slot} (see `nullgate wallet status`)"))?;
    let commitment = note::commitment(&note.secret);
    let record = session.vault.note(&commitment, BlockRef::Latest).await?;
    match record.status {
        ChainStatus::Active => {}
        ChainStatus::Exiting => bail!(
            "note {slot}'s exit is already on chain; run `nullgate wallet finalize --note \
             {slot}` once its window ends"
        ),
        other => bail!("note {slot} is {other:?} on chain: there is nothing to exit"),
    }
    let summary = session.vault.summary().await?;
    let deployment = summary.deployment()?;
    let now = chain_now(session).await?;
    let time_left = time_to_exit(slot, &note, summary.expiry_grace, now)?;
    let journalled = session.journal.read(slot)?;
    let max_class_cost = deployment.cost_classes.last().copied().unwrap_or(0);
    let plan = plan_exit(
        slot,
        &note,
        journalled.as_ref(),
        max_class_cost,
        args.payout,
        args.give_up_on_receipt,
    )?;
    let exit_key = exit_key(args.exit_proving_key.as_ref(), &deployment).await?;
    let number = state_key_number(&note, deployment.current_key.0);
    let key = state_key(&session.vault, number).await?;
    // The random wait ends in time for the exit to reach the chain before its deadline.
    let delay = random_delay(args.max_delay.min(time_left / 2));
    let waiting = format!(
        "waiting {} (random) so the exit is not timed after the last request",
        humantime::format_duration(Duration::from_secs(delay.as_secs()))
    );
    let spinner = new_spinner(true, "waiting");
    spinner.set_message(waiting);
    tokio::time::sleep(delay).await;
    spinner.set_message("proving the exit");
    let recipient = args.recipient.into_array();
    let statement = tokio::task::spawn_blocking(move || {
        ExitStatement::prove(
            &exit_key,
            &deployment,
            (number, &key),
            &note,
            &plan,
            recipient,
        )
    })
    .await??;
    spinner.finish_and_clear();
    // From here the share may leave the device: the note never takes a new request again.
    session.wallet.set_status(slot, NoteStatus::Exiting)?;
    eprintln!(
        "note {slot}: exit declares {} requests (index {}), payout {} of at most {} credits",
        plan.count, note.state.index, plan.payout, plan.most
    );
    Ok(Proven {
        statement,
        commitment,
    })
}

/// The exit proving key: the file given (hash checked against the vault), or the DEV key
/// when the vault pins it.
async fn exit_key(path: Option<&PathBuf>, deployment: &Deployment) -> anyhow::Result<ProverKey> {
    let pinned = deployment.exit_proving_key_hash;
    if let Some(path) = path {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read {} (from `nullgate setup`)", path.display()))?;
        return load_prover_key(&bytes, Some(&pinned))
            .context("the exit proving key is not the one the vault pins");
    }
    let spinner = new_spinner(true, "DEV setup of the exit key");
    let key = tokio::task::spawn_blocking(|| dev_setup(CircuitKind::Exit, &DEV_SEED)).await??;
    spinner.finish_and_clear();
    if key_file_hash(&key.to_file_bytes())? != pinned {
        bail!(
            "the vault does not use the DEV exit key: pass --exit-proving-key with the key \
             from the vault's setup"
        );
    }
    Ok(key)
}

/// State key `number` as the vault registered it.
async fn state_key(vault: &Vault, number: u32) -> anyhow::Result<PublicKey> {
    let live = vault.live_parameters(BlockRef::Latest).await?;
    live.keys
        .into_iter()
        .find(|k| k.number == number)
        .map(|k| k.key)
        .with_context(|| format!("the vault lists no state key {number}"))
}

/// `nullgate wallet exit`.
pub(crate) async fn exit(args: ExitArgs) -> anyhow::Result<()> {
    let mut session = open_wallet(&args.leave.common).await?;
    let sender = session.chain.sender()?;
    let proven = prove_and_mark(&mut session, &args.leave).await?;
    let spinner = new_spinner(true, "sending initiateExit");
    let sent = session
        .vault
        .initiate_exit(sender, &proven.statement.chain_args())
        .await;
    spinner.finish_and_clear();
    session.chain.save()?;
    sent.context(
        "initiateExit failed; the note stays Exiting in the wallet (no new requests): run \
         the same exit again, which sends the same share",
    )?;
    let slot = args.leave.note;
    let record = session
        .vault
        .note(&proven.commitment, BlockRef::Latest)
        .await?;
    println!(
        "note {slot} is exiting; its window ends at {} (run `nullgate wallet finalize --note \
         {slot}` then)",
        unix_time(record.exit_deadline)
    );
    if args.wait {
        watch_and_finalize(&mut session, slot, &proven.commitment).await?;
    }
    Ok(())
}

/// Watches an exit's window (the note must stay Exiting: a slash would show here) and
/// finalises it when the window ends.
async fn watch_and_finalize(
    session: &mut Session,
    slot: usize,
    commitment: &nullgate_zk::Fr,
) -> anyhow::Result<()> {
    loop {
        let record = session.vault.note(commitment, BlockRef::Latest).await?;
        if record.status != ChainStatus::Exiting {
            bail!(
                "note {slot} is {:?} on chain while its exit was pending",
                record.status
            );
        }
        let now = chain_now(session).await?;
        if now >= record.exit_deadline {
            return finalize_note(session, slot).await;
        }
        let left = record.exit_deadline - now;
        eprintln!(
            "note {slot}: exit window ends in {}",
            humantime::format_duration(Duration::from_secs(left))
        );
        tokio::time::sleep(Duration::from_secs(left.clamp(1, 60))).await;
    }
}

/// `nullgate wallet finalize`.
pub(crate) async fn finalize(args: FinalizeArgs) -> anyhow::Result<()> {
    let mut session = open_wallet(&args.common).await?;
    let result = finalize_note(&mut session, args.note).await;
    session.chain.save()?;
    result
}

async fn finalize_note(session: &mut Session, slot: usize) -> anyhow::Result<()> {
    let note = *session
        .wallet
        .note(slot)
        .with_context(|| format!("the wallet has no note {slot}"))?;
    let commitment = note::commitment(&note.secret);
    let record = session.vault.note(&commitment, BlockRef::Latest).await?;
    match record.status {
        ChainStatus::Exiting => {}
        ChainStatus::Closed => {
            session.wallet.set_status(slot, NoteStatus::Closed)?;
            println!("note {slot} is already paid out");
            return Ok(());
        }
        other => bail!(
            "note {slot} is {other:?} on chain, not Exiting: start with `nullgate wallet exit \
             --note {slot}`"
        ),
    }
    let now = chain_now(session).await?;
    if now < record.exit_deadline {
        bail!(
            "note {slot}'s exit window ends at {} (in {}); finalize then",
            unix_time(record.exit_deadline),
            humantime::format_duration(Duration::from_secs(record.exit_deadline - now))
        );
    }
    session
        .vault
        .finalize_exit(session.chain.sender()?, &commitment)
        .await
        .context("finalizeExit failed")?;
    session.wallet.set_status(slot, NoteStatus::Closed)?;
    println!("note {slot} is paid out");
    Ok(())
}

/// `nullgate wallet close`.
pub(crate) async fn close(args: CloseArgs) -> anyhow::Result<()> {
    let mut session = open_wallet(&args.leave.common).await?;
    let sender = session.chain.sender()?;
    let deployment = session.vault.summary().await?.deployment()?;
    let transport = transport(&args.gateway, &deployment).await?;
    let proven = prove_and_mark(&mut session, &args.leave).await?;
    let slot = args.leave.note;
    let clearance = ask_clearance(&transport, &args.gateway.gateway, &proven.statement)
        .await
        .with_context(|| {
            format!(
                "no clearance; the note stays Exiting: run the close again, or `nullgate \
                 wallet exit --note {slot}` (slower, needs no gateway)"
            )
        })?;
    let sent = session
        .vault
        .close_with_clearance(
            sender,
            &proven.statement.chain_args(),
            Bytes::from(clearance.0.to_vec()),
        )
        .await;
    session.chain.save()?;
    sent.context("closeWithClearance failed; the note stays Exiting: run the close again")?;
    session.wallet.set_status(slot, NoteStatus::Closed)?;
    println!(
        "note {slot} is closed and {} credits are paid to {}",
        proven.statement.public.payout, args.leave.recipient
    );
    Ok(())
}

/// The transport to the gateway the options name; a sealed one's key is checked against the
/// chain.
async fn transport(args: &GatewayArgs, deployment: &Deployment) -> anyhow::Result<ChosenTransport> {
    match (&args.relay, &args.proxy_config) {
        (Some(relay), _) => Ok(ChosenTransport::Ohttp(
            OhttpTransport::through_relay(relay.clone(), &deployment.ohttp_keys_hash)
                .await
                .context("fetching the gateway's OHTTP key through the relay")?,
        )),
        (None, Some(path)) => {
            TransportFile::read_from(path)?
                .connect(&deployment.ohttp_keys_hash)
                .await
        }
        (None, None) => bail!("say how to reach the gateway: --relay URL or --proxy-config FILE"),
    }
}

/// Reads note secrets, one per line in hex.
fn read_secrets(path: &std::path::Path) -> anyhow::Result<Vec<nullgate_zk::Fr>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut secrets = Vec::new();
    for (line, value) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bytes = hex::decode(value.trim().trim_start_matches("0x"))
            .ok()
            .filter(|b| b.len() == 32);
        let secret = bytes
            .and_then(|b| fr_from_bytes(&b, "secret").ok())
            .with_context(|| {
                format!(
                    "{} line {}: not a note secret (64 hex digits)",
                    path.display(),
                    line + 1
                )
            })?;
        secrets.push(secret);
    }
    if secrets.is_empty() {
        bail!("{} holds no secrets", path.display());
    }
    Ok(secrets)
}

/// Reads a copy of a wallet file: with the named passphrase, or unencrypted, or with one
/// asked on the terminal when it is sealed.
fn read_copy(
    path: &std::path::Path,
    passphrase: &PassphraseArgs,
) -> anyhow::Result<(VaultId, Vec<NoteEntry>)> {
    if let Some(passphrase) = passphrase.named()? {
        return Ok(Wallet::read_copy(path, Some(&passphrase))?);
    }
    match Wallet::read_copy(path, None) {
        Err(WalletError::NeedPassphrase { .. }) if std::io::stdin().is_terminal() => {
            let passphrase = Passphrase::new(rpassword::prompt_password(format!(
                "passphrase of {}: ",
                path.display()
            ))?);
            Ok(Wallet::read_copy(path, Some(&passphrase))?)
        }
        other => Ok(other?),
    }
}

/// The notes to restore: the copy's, each with the state it holds, then the secrets the copy
/// lacks, each from its deposit; and the vault the copy is of.
type ToRestore = (Option<VaultId>, Vec<(nullgate_zk::Fr, Option<NoteState>)>);

/// Reads what `restore` starts from (before any chain or gateway is asked).
fn notes_to_restore(args: &RestoreArgs) -> anyhow::Result<ToRestore> {
    let mut notes = Vec::new();
    let mut copied = None;
    if let Some(path) = &args.backup {
        let (vault, entries) = read_copy(path, &args.common.passphrase)?;
        copied = Some(vault);
        notes.extend(entries.into_iter().map(|e| (e.secret, Some(e.state))));
    }
    if let Some(path) = &args.secrets {
        for secret in read_secrets(path)? {
            if !notes.iter().any(|(known, _)| known == &secret) {
                notes.push((secret, None));
            }
        }
    }
    if notes.is_empty() {
        bail!("nothing to restore: the wallet copy holds no notes");
    }
    Ok((copied, notes))
}

/// `nullgate wallet restore`.
pub(crate) async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let (copied, notes) = notes_to_restore(&args)?;
    let chain = open(&args.common.chain)?;
    let chain_id = chain.ledger.chain_id().await?;
    let vault = Arc::new(Vault::at(chain.ledger.clone(), args.vault).await?);
    let deployment = vault.summary().await?.deployment()?;
    let keys: Vec<(u32, PublicKey)> = vault
        .live_parameters(BlockRef::Latest)
        .await?
        .keys
        .into_iter()
        .map(|k| (k.number, k.key))
        .collect();
    let transport = transport(&args.gateway, &deployment).await?;
    let finalized = chain.ledger.finalized().await?;
    let id = VaultId {
        chain_id,
        vault: args.vault.into_array(),
    };
    if let Some(copied) = copied.filter(|copied| copied != &id) {
        bail!(
            "the wallet copy is of vault 0x{} on chain {}, not of 0x{} on chain {}; nothing \
             was created",
            hex::encode(copied.vault),
            copied.chain_id,
            hex::encode(id.vault),
            id.chain_id
        );
    }
    let mut wallet = if args.unencrypted {
        Wallet::create(&args.common.wallet, id)?
    } else {
        let passphrase = args.common.passphrase.for_new()?;
        Wallet::create_sealed(&args.common.wallet, id, &passphrase)?
    };
    let spinner = new_spinner(!args.json, "walking the gateway's receipts");
    for (number, (secret, from)) in notes.into_iter().enumerate() {
        spinner.set_message(format!("note {number}: walking the gateway's receipts"));
        let record = vault
            .note(
                &note::commitment(&secret),
                BlockRef::Number(finalized.number),
            )
            .await?;
        let entry = restore_note(
            &transport,
            &args.gateway.gateway,
            &deployment,
            &keys,
            secret,
            &record,
            from,
            args.max_pause,
        )
        .await
        .with_context(|| format!("restoring note {number}"))?;
        wallet.add_note(entry)?;
    }
    spinner.finish_and_clear();
    drop(wallet);
    drop(chain);
    let mut session = open_wallet(&args.common).await?;
    let status = status(&mut session, super::DEFAULT_MIN_ANONYMITY, !args.json).await?;
    print(&status, View::Notes, args.json)
}

/// `nullgate wallet secrets`.
pub(crate) fn secrets(args: SecretsArgs) -> anyhow::Result<()> {
    let opened = args.passphrase.open(&args.wallet)?;
    eprintln!(
        "warning: these secrets spend the notes: keep them offline, and restore with \
         `nullgate wallet restore --secrets FILE`"
    );
    for note in opened.wallet.notes() {
        println!("{}", hex::encode(fr_to_bytes(&note.secret)));
    }
    Ok(())
}

/// The time the next block will carry, about: the newest block's, or the wall clock if that
/// is later (a quiet chain mines no block until a transaction comes).
async fn chain_now(session: &Session) -> anyhow::Result<u64> {
    let latest = session.chain.ledger.latest().await?.timestamp;
    Ok(latest.max(unix_now()))
}
