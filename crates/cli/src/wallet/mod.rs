//! `nullgate wallet`: the user's notes, on the embedded chain (`--snapshot FILE`) or any
//! JSON-RPC node (`--rpc-url`).
//!
//! - `new --vault ADDR`: an empty wallet for one vault (its chain id read from the chain).
//! - `deposit --amount A --notes K`: `K` new notes of `A / K` credits each (the remainder on
//!   the first) in one `depositMany` transaction; the secrets are in the wallet, fsynced,
//!   before the transaction is sent.
//! - `status`: every note's balance, index, expiry and pending journal entry, and the size of
//!   the anonymity set, as a table (`--json` for JSON); notes whose deposits became final are
//!   activated first.
//! - `balance`: the totals, and whether the wallet may spend now.
//! - `exit`, `finalize`, `close`, `restore`, `secrets`: leaving and coming back, see
//!   [`leave`].
//!
//! **The anonymity threshold** (PROTOCOL §9): a spend hides among the Active, unexpired
//! notes of the vault. Below `--min-anonymity` of them (default
//! [`DEFAULT_MIN_ANONYMITY`]) `status` and `balance` say that spending is refused, and why.

mod leave;

use std::{io::IsTerminal, path::PathBuf};

use anyhow::{Context, bail};
use nullgate_chain::{Address, AnonymitySet, BlockRef, Vault};
use nullgate_client::{
    client::{DEFAULT_FIRST_USE_DELAY, activate, add_pending_notes, unix_now},
    journal::Journal,
    wallet::{NoteStatus, Passphrase, VaultId, Wallet, WalletError},
};
use nullgate_zk::note;
use serde::Serialize;

use crate::{
    bench_zk::new_spinner,
    vault::{ChainArgs, Opened, open},
};

pub(crate) use nullgate_client::client::DEFAULT_MIN_ANONYMITY;

/// Warn about notes that expire within this many days.
const EXPIRY_WARNING_DAYS: u32 = 14;

/// `nullgate wallet …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create an empty wallet for a vault.
    New(NewArgs),
    /// Deposit into new notes, all in one transaction.
    Deposit(DepositArgs),
    /// Every note (balance, index, expiry, journal) and the anonymity set, as a table.
    Status(StatusArgs),
    /// The total balance, and whether the wallet may spend now.
    Balance(StatusArgs),
    /// Exit a note without the gateway: prove, `initiateExit`, finalise after the window.
    Exit(leave::ExitArgs),
    /// Pay out an exit whose window has passed.
    Finalize(leave::FinalizeArgs),
    /// Close a note at once with the gateway's clearance (mutual close).
    Close(leave::CloseArgs),
    /// A new wallet rebuilt from note secrets, walking the gateway's receipts.
    Restore(leave::RestoreArgs),
    /// Print the note secrets (for `restore`; keep them offline).
    Secrets(leave::SecretsArgs),
}

/// The wallet and the chain, for every wallet command.
#[derive(Debug, clap::Args)]
pub(crate) struct WalletArgs {
    /// The wallet directory.
    #[arg(long, default_value = "wallet")]
    wallet: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(flatten)]
    chain: ChainArgs,
}

/// Where an encrypted wallet's passphrase comes from.
#[derive(Debug, clap::Args)]
pub(crate) struct PassphraseArgs {
    /// The environment variable that holds the wallet's passphrase. Without it the
    /// passphrase is asked for on the terminal when the wallet is encrypted.
    #[arg(long, value_name = "NAME")]
    pub(crate) passphrase_env: Option<String>,
}

impl PassphraseArgs {
    /// The passphrase from the variable named, if one was named.
    fn named(&self) -> anyhow::Result<Option<Passphrase>> {
        let Some(name) = &self.passphrase_env else {
            return Ok(None);
        };
        let value = std::env::var(name).with_context(|| {
            format!("--passphrase-env {name}: the variable is not set (or not UTF-8)")
        })?;
        if value.is_empty() {
            bail!("--passphrase-env {name}: the variable is empty");
        }
        Ok(Some(Passphrase::new(value)))
    }

    /// The passphrase for a new wallet: the variable, or asked twice on the terminal.
    pub(crate) fn for_new(&self) -> anyhow::Result<Passphrase> {
        if let Some(passphrase) = self.named()? {
            return Ok(passphrase);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "a new wallet is encrypted: set its passphrase in a variable and pass \
                 --passphrase-env NAME (or --unencrypted, which leaves the note secrets \
                 readable on disk)"
            );
        }
        let first = rpassword::prompt_password("new wallet passphrase: ")?;
        let second = rpassword::prompt_password("the same again: ")?;
        if first != second {
            bail!("the two passphrases differ; nothing was created");
        }
        Ok(Passphrase::new(first))
    }

    /// Opens the wallet in `dir`: with the variable's passphrase if named; otherwise
    /// unencrypted, or, when it is encrypted, with a passphrase asked on the terminal.
    pub(crate) fn open(
        &self,
        dir: &std::path::Path,
    ) -> anyhow::Result<nullgate_client::wallet::Opened> {
        if let Some(passphrase) = self.named()? {
            return Ok(Wallet::open_sealed(dir, Some(&passphrase))?);
        }
        match Wallet::open(dir) {
            Err(WalletError::NeedPassphrase { .. }) if std::io::stdin().is_terminal() => {
                let passphrase =
                    Passphrase::new(rpassword::prompt_password("wallet passphrase: ")?);
                Ok(Wallet::open_sealed(dir, Some(&passphrase))?)
            }
            other => Ok(other?),
        }
    }
}

/// Options of `nullgate wallet new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// The vault's address.
    #[arg(long)]
    vault: Address,
    /// Leave the wallet file unencrypted (its note secrets readable by anyone who can read
    /// the file). By default it is encrypted under a passphrase.
    #[arg(long)]
    unencrypted: bool,
}

/// Options of `nullgate wallet deposit`.
#[derive(Debug, clap::Args)]
pub(crate) struct DepositArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// Credits to deposit in all.
    #[arg(long)]
    amount: u64,
    /// Notes to split them into (one request in flight per note).
    #[arg(long, default_value_t = 1)]
    notes: u64,
    /// The longest random delay, in seconds, before a new note's first use, each note
    /// drawing its own (PROTOCOL §3: deposit time must not point at first use).
    #[arg(long, default_value_t = DEFAULT_FIRST_USE_DELAY.as_secs())]
    first_use_delay: u64,
    /// Print the status as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Options of `nullgate wallet status` and `balance`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    common: WalletArgs,
    /// Refuse to spend below this many Active, unexpired notes in the vault.
    #[arg(long, default_value_t = DEFAULT_MIN_ANONYMITY)]
    min_anonymity: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `nullgate wallet …`.
pub(crate) fn run(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            Command::New(args) => new(args).await,
            Command::Deposit(args) => deposit(args).await,
            Command::Status(args) => show(args, View::Notes).await,
            Command::Balance(args) => show(args, View::Totals).await,
            Command::Exit(args) => leave::exit(args).await,
            Command::Finalize(args) => leave::finalize(args).await,
            Command::Close(args) => leave::close(args).await,
            Command::Restore(args) => leave::restore(args).await,
            Command::Secrets(args) => leave::secrets(args),
        }
    })
}

async fn new(args: NewArgs) -> anyhow::Result<()> {
    let chain = open(&args.common.chain)?;
    let chain_id = chain.ledger.chain_id().await?;
    Vault::at(chain.ledger.clone(), args.vault)
        .await
        .with_context(|| format!("no vault at {} on chain {chain_id}", args.vault))?;
    let id = VaultId {
        chain_id,
        vault: args.vault.into_array(),
    };
    if args.unencrypted {
        Wallet::create(&args.common.wallet, id)?;
    } else {
        let passphrase = args.common.passphrase.for_new()?;
        Wallet::create_sealed(&args.common.wallet, id, &passphrase)?;
    }
    println!(
        "created an empty wallet in {} for vault {} on chain {chain_id}; next: nullgate wallet \
         deposit --amount A --notes K",
        args.common.wallet.display(),
        args.vault
    );
    Ok(())
}

/// The wallet, opened and locked, with its vault on the chain it was made for.
struct Session {
    chain: Opened,
    vault: Vault,
    wallet: Wallet,
    journal: Journal,
}

async fn open_wallet(args: &WalletArgs) -> anyhow::Result<Session> {
    let opened = args.passphrase.open(&args.wallet)?;
    if let Some(warning) = &opened.warning {
        eprintln!("warning: {warning}");
    }
    let wallet = opened.wallet;
    let chain = open(&args.chain)?;
    let chain_id = chain.ledger.chain_id().await?;
    let id = wallet.vault();
    if chain_id != id.chain_id {
        bail!(
            "the wallet in {} is for chain {}, but the node is chain {chain_id}: point \
             --rpc-url at the wallet's chain",
            args.wallet.display(),
            id.chain_id
        );
    }
    let vault = Vault::at(chain.ledger.clone(), Address::from(id.vault)).await?;
    let journal = Journal::open(wallet.journal_dir())?;
    Ok(Session {
        chain,
        vault,
        wallet,
        journal,
    })
}

async fn deposit(args: DepositArgs) -> anyhow::Result<()> {
    let mut session = open_wallet(&args.common).await?;
    let sender = session.chain.sender()?;
    let amounts = split(args.amount, args.notes)?;
    let summary = session.vault.summary().await?;
    if amounts.iter().any(|&a| a < summary.min_deposit) {
        bail!(
            "{} credits in {} notes is {} per note, below the vault's minimum deposit of {}: \
             deposit more or into fewer notes",
            args.amount,
            args.notes,
            amounts[amounts.len() - 1],
            summary.min_deposit
        );
    }
    let notes = add_pending_notes(
        &mut session.wallet,
        &session.journal,
        &amounts,
        std::time::Duration::from_secs(args.first_use_delay),
    )?;
    let spinner = new_spinner(!args.json, "depositing (one depositMany transaction)");
    let sent = session.vault.deposit_many(sender, &notes).await;
    spinner.finish_and_clear();
    if let Err(error) = sent {
        // The notes stay Pending in the wallet: a deposit that did land is found by the
        // next `status`, one that did not simply never activates.
        session.chain.save()?;
        return Err(error).context(
            "the deposit transaction failed; the new notes stay pending in the wallet, and \
             `nullgate wallet status` activates them if the deposit landed after all",
        );
    }
    session.chain.save()?;
    let status = status(&mut session, DEFAULT_MIN_ANONYMITY, !args.json).await?;
    print(&status, View::Notes, args.json)
}

/// `amount` in `notes` parts, the remainder on the first.
fn split(amount: u64, notes: u64) -> anyhow::Result<Vec<u64>> {
    if notes == 0 || notes > 256 {
        bail!("--notes must be between 1 and 256");
    }
    let each = amount / notes;
    let mut amounts = vec![each; usize::try_from(notes)?];
    amounts[0] += amount % notes;
    Ok(amounts)
}

/// What `status` and `balance` show.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum View {
    Notes,
    Totals,
}

async fn show(args: StatusArgs, view: View) -> anyhow::Result<()> {
    let mut session = open_wallet(&args.common).await?;
    let status = status(&mut session, args.min_anonymity, !args.json).await?;
    session.chain.save()?;
    print(&status, view, args.json)
}

/// The wallet as `status` shows it.
#[derive(Debug, Serialize)]
struct Status {
    vault: String,
    chain_id: u64,
    notes: Vec<NoteRow>,
    /// The spendable balance: Active notes only.
    balance: u64,
    /// Active, unexpired notes of the vault at the finalised block.
    anonymity_set: usize,
    min_anonymity: usize,
    spending: &'static str,
    /// Why spending is refused (`None` when allowed).
    why: Option<String>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct NoteRow {
    slot: usize,
    status: NoteStatus,
    note_id: Option<u32>,
    deposit: u64,
    balance: u64,
    index: u32,
    /// Hours since the Unix epoch.
    expiry: Option<u32>,
    /// The journalled request's index, if one is pending (re-sent before any new request).
    journal: Option<u32>,
    /// Unix seconds before which a new note waits out its random first-use delay, while it
    /// does (PROTOCOL §3).
    first_use: Option<u64>,
}

async fn status(
    session: &mut Session,
    min_anonymity: usize,
    progress: bool,
) -> anyhow::Result<Status> {
    let finalized = session.chain.ledger.finalized().await?;
    // Pending notes whose deposit is final become Active.
    for slot in 0..session.wallet.notes().len() {
        let entry = session.wallet.notes()[slot];
        if entry.status != NoteStatus::Pending {
            continue;
        }
        let record = session
            .vault
            .note(
                &note::commitment(&entry.secret),
                BlockRef::Number(finalized.number),
            )
            .await?;
        activate(&mut session.wallet, slot, &record)?;
    }
    let hour = u32::try_from(finalized.timestamp / 3_600).unwrap_or(u32::MAX);
    let spinner = new_spinner(progress, "reading the vault's events for the anonymity set");
    let events = session.vault.events(0, finalized.number).await;
    spinner.finish_and_clear();
    let anonymity_set = AnonymitySet::of(&events?).size_at(hour);
    let journal: std::collections::HashMap<usize, u32> = session
        .journal
        .pending()?
        .into_iter()
        .map(|(slot, entry)| (slot, entry.index))
        .collect();
    let mut warnings = Vec::new();
    let now = unix_now();
    let notes: Vec<NoteRow> = session
        .wallet
        .notes()
        .iter()
        .enumerate()
        .map(|(slot, n)| {
            if n.status == NoteStatus::Active
                && let Some(expiry) = n.expiry
                && expiry <= hour.saturating_add(EXPIRY_WARNING_DAYS * 24)
            {
                warnings.push(format!(
                    "note {slot} expires in {} h: exit it (and deposit again) before then, or \
                     its balance goes to the treasury",
                    expiry.saturating_sub(hour)
                ));
            }
            NoteRow {
                slot,
                status: n.status,
                note_id: n.note_id,
                deposit: n.deposit,
                balance: n.state.balance,
                index: n.state.index,
                expiry: n.expiry,
                journal: journal.get(&slot).copied(),
                first_use: n.first_use.filter(|&t| t > now),
            }
        })
        .collect();
    let balance = notes
        .iter()
        .filter(|n| n.status == NoteStatus::Active)
        .map(|n| n.balance)
        .sum();
    let why = (anonymity_set < min_anonymity).then(|| {
        format!(
            "the vault has {anonymity_set} Active, unexpired notes and spending needs at least \
             {min_anonymity} (--min-anonymity): among so few, a request points at its note; \
             wait for more deposits"
        )
    });
    let id = session.wallet.vault();
    Ok(Status {
        vault: Address::from(id.vault).to_string(),
        chain_id: id.chain_id,
        notes,
        balance,
        anonymity_set,
        min_anonymity,
        spending: if why.is_some() { "refused" } else { "allowed" },
        why,
        warnings,
    })
}

fn print(status: &Status, view: View, json: bool) -> anyhow::Result<()> {
    for warning in &status.warnings {
        eprintln!("warning: {warning}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    if view == View::Notes {
        println!(
            "{:>4}  {:<8}  {:>7}  {:>10}  {:>10}  {:>6}  {:<20}  {:<12}  {:<20}",
            "note",
            "status",
            "note id",
            "deposit",
            "balance",
            "index",
            "expires",
            "journal",
            "first use"
        );
        for n in &status.notes {
            println!(
                "{:>4}  {:<8}  {:>7}  {:>10}  {:>10}  {:>6}  {:<20}  {:<12}  {:<20}",
                n.slot,
                format!("{:?}", n.status).to_lowercase(),
                n.note_id.map_or("—".into(), |id| id.to_string()),
                n.deposit,
                n.balance,
                n.index,
                n.expiry.map_or("—".into(), expiry_time),
                n.journal
                    .map_or("—".into(), |index| format!("#{index} pending")),
                n.first_use.map_or("now".into(), unix_time),
            );
        }
        println!();
    }
    let rows = [
        (
            "vault",
            format!("{} (chain {})", status.vault, status.chain_id),
        ),
        (
            "balance",
            format!("{} credits (Active notes)", status.balance),
        ),
        (
            "anonymity set",
            format!(
                "{} Active, unexpired notes (spending needs {})",
                status.anonymity_set, status.min_anonymity
            ),
        ),
        (
            "spending",
            match &status.why {
                None => "allowed".into(),
                Some(why) => format!("refused: {why}"),
            },
        ),
    ];
    for (name, value) in rows {
        println!("{name:>14}  {value}");
    }
    Ok(())
}

/// An expiry hour as a UTC time.
fn expiry_time(hour: u32) -> String {
    unix_time(u64::from(hour) * 3_600)
}

/// Seconds since the Unix epoch as a UTC time.
fn unix_time(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn deposits_split_with_the_remainder_first() {
        assert_eq!(split(10, 3).unwrap(), vec![4, 3, 3]);
        assert_eq!(split(9, 1).unwrap(), vec![9]);
        assert!(split(9, 0).is_err());
        assert!(split(9, 257).is_err());
    }
}
