// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {BabyJubJub} from "./BabyJubJub.sol";
import {IExitVerifier} from "./IExitVerifier.sol";
import {PoseidonT3, PoseidonT5} from "./generated/Poseidon.sol";

/// @notice The ERC-20 calls the vault makes.
interface IERC20Minimal {
    /// @notice ERC-20 `balanceOf`.
    function balanceOf(address owner) external view returns (uint256);
}

/// @title nullgate's note vault: deposits, exits, mutual close, slashing and expiry.
/// @notice Implements PROTOCOL.md §2 (deployment parameters), §3 (notes) and §8 (leaving).
/// One vault, one payee, one asset (native ETH or one ERC-20); amounts are credit units
/// (`< 2^64`) of `unitSize` token base units. Not upgradeable.
contract NoteVault {
    // ---------------------------------------------------------------- types

    /// The note state machine of §8.
    enum Status {
        None,
        Active,
        Exiting,
        Closed,
        Slashed,
        Expired
    }

    /// One note, packed in one storage slot.
    struct Note {
        uint24 noteId;
        uint64 amount; // D, credit units
        uint32 expiry; // hours since the Unix epoch
        Status status;
        uint64 exitDeadline; // seconds; set when Exiting
    }

    /// The pending payout of an Exiting note.
    struct ExitClaim {
        address recipient;
        uint64 payout; // P, credit units
    }

    /// A state key `PK_i` (§2).
    struct StateKey {
        uint256 x;
        uint256 y;
        uint64 activation; // seconds: current from then on, unless revoked
        bool revoked;
        uint32 depositCountAtRevocation; // exits under a revoked key: only note_id below this
    }

    /// Everything fixed at deployment (§2).
    struct Deployment {
        IExitVerifier exitVerifier;
        address asset; // address(0) for native ETH
        uint256 unitSize; // token base units per credit unit
        uint64 minDeposit; // credit units
        uint64[] costClasses; // C_1 < … < C_max, at most 8
        uint64 floorFee; // Δ_min ≤ C_1
        uint64 exitWindow; // W, seconds
        uint64 expiryGrace; // G_exp ≥ W, seconds
        uint64 noteLifetime; // TTL, seconds
        bytes32 requestProvingKeyHash;
        bytes32 exitProvingKeyHash;
        bytes32 requestVerifyingKeyHash;
        bytes32 exitVerifyingKeyHash;
        bool devKeys;
        uint256 stateKeyX; // PK_1
        uint256 stateKeyY;
        address operator;
        address treasury;
        address clearanceSigner;
        bytes32 priceListHash;
        bytes32 ohttpKeysHash;
    }

    // ---------------------------------------------------------------- events (§2, §3, §8)

    /// @notice A deposit created note `noteId` with commitment `commitment` (§3).
    event NoteDeposited(uint32 noteId, uint256 commitment, uint64 amount, uint32 expiry);
    /// @notice An exit was initiated; it can be finalized from `deadline` (§8).
    event ExitInitiated(uint32 noteId, uint256 nullifier, uint256 share, uint64 payout, uint64 deadline);
    /// @notice An exit was paid out (§8).
    event ExitFinalized(uint32 noteId);
    /// @notice A mutual close was paid out (§8).
    event NoteClosed(uint32 noteId, uint256 nullifier, uint256 share, uint64 payout);
    /// @notice A note was slashed: all of its deposit went to the treasury (§8).
    event NoteSlashed(uint32 noteId);
    /// @notice An expired note's deposit went to the treasury (§8).
    event NoteExpired(uint32 noteId);
    /// @notice State key `number` was registered; it is current from `activation` (§2).
    event KeyRegistered(uint32 number, uint256 pkX, uint256 pkY, uint64 activation);
    /// @notice State key `number` was revoked when `depositCount` notes existed (§2).
    event KeyRevoked(uint32 number, uint32 depositCount);
    /// @notice A changeable parameter changed; the new value holds from `effectiveAt` (§2).
    event ParameterChanged(bytes32 name, bytes32 value, uint64 effectiveAt);
    /// @notice The treasury withdrew its credited balance.
    event TreasuryWithdrawn(address treasury, uint256 units);

    // ---------------------------------------------------------------- errors

    /// A field element is not below the BN254 scalar field modulus `p`.
    error FieldElementOutOfRange(uint256 value);
    /// A commitment must be non-zero.
    error ZeroCommitment();
    /// A deposit below the vault's minimum deposit.
    error DepositBelowMinimum(uint64 amount, uint64 minimum);
    /// This commitment was already deposited.
    error DuplicateCommitment(uint256 commitment);
    /// The vault holds 2^24 notes and takes no more.
    error VaultFull();
    /// Deposits are paused by the operator (exits, closes, slashes and claims never are).
    error DepositsPaused();
    /// The ETH sent is not exactly the deposit's value.
    error WrongPayment(uint256 sent, uint256 expected);
    /// The vault's token balance grew by less than the deposit's value.
    error TokenAmountShort(uint256 received, uint256 expected);
    /// A token call failed or returned false.
    error TokenCallFailed();
    /// An ETH transfer failed.
    error EthTransferFailed();
    /// `depositMany` got lists of different or zero length.
    error BadDepositList();
    /// No note has this commitment.
    error UnknownNote(uint256 commitment);
    /// The note is not in a state that allows this call.
    error WrongNoteStatus(Status status);
    /// Exits and closes are allowed only while `block.timestamp < 3600·expiry + G_exp`.
    error ExitDeadlinePassed(uint256 deadline);
    /// `claimExpired` is allowed only from `3600·expiry + G_exp`.
    error NotYetExpired(uint256 claimableAt);
    /// The payout exceeds the deposit.
    error PayoutExceedsDeposit(uint64 payout, uint64 amount);
    /// Payouts to the zero address are refused.
    error ZeroRecipient();
    /// No state key has this number.
    error UnknownKey(uint32 number);
    /// The key was revoked before this note was deposited.
    error KeyRevokedForNote(uint32 number, uint32 noteId);
    /// The Groth16 exit proof did not verify.
    error InvalidExitProof();
    /// The exit challenge window is still open.
    error ExitWindowOpen(uint64 deadline);
    /// The clearance is not a valid signature by the clearance signer on this nullifier.
    error InvalidClearance();
    /// Only the operator may call this.
    error NotOperator();
    /// Only the treasury may withdraw the treasury's credit.
    error NotTreasury();
    /// Nothing to withdraw.
    error NothingToWithdraw();
    /// A reentrant call.
    error Reentrancy();
    /// The point is not on Baby-JubJub, not in its prime-order subgroup, or the identity.
    error InvalidKeyPoint();
    /// At most one key registration per 30 days.
    error KeyRegistrationTooSoon(uint256 allowedAt);
    /// A new key's activation must be at least `W + G_exp` after its registration.
    error ActivationTooSoon(uint64 activation, uint256 earliest);
    /// The key is already revoked.
    error KeyAlreadyRevoked(uint32 number);
    /// Revoking the current key needs a registered, unrevoked successor.
    error BadSuccessor(uint32 number);
    /// A deployment parameter breaks §2's rules.
    error BadDeployment(string reason);
    /// `devKeys` is accepted only on chain ids 31337 and 1337.
    error DevKeysOnPublicChain(uint256 chainId);
    /// An address parameter must not be zero.
    error ZeroAddress();

    // ---------------------------------------------------------------- constants

    /// BN254's scalar field modulus `p`.
    uint256 public constant FIELD_MODULUS = BabyJubJub.P;
    /// Protocol version (§2).
    uint256 public constant VERSION = 1;
    /// Notes per vault: `note_id < 2^24` (§3).
    uint256 public constant MAX_NOTES = 1 << 24;
    /// At most one key registration per this period (§2).
    uint256 public constant KEY_REGISTRATION_INTERVAL = 30 days;
    /// The longest note lifetime `TTL` (ten years): a note's expiry, in hours, stays far
    /// below 2^32, and with `W ≤ G_exp ≤ TTL` no window outlasts a note's life.
    uint256 public constant MAX_NOTE_LIFETIME = 3650 days;
    /// Domain tags (§11).
    uint256 internal constant T_DOM = 1;
    uint256 internal constant T_ID = 2;
    uint256 internal constant T_EXIT = 10;

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// @notice The EIP-712 type of a clearance (§8).
    bytes32 public constant CLEARANCE_TYPEHASH = keccak256("Clearance(uint256 nullifier)");
    /// secp256k1's group order / 2: signatures with a larger `s` are refused (malleability).
    /// XORed into the stored deposits digest (any non-zero constant).
    bytes32 internal constant DIGEST_MASK = bytes32(uint256(1));
    uint256 internal constant SECP256K1_HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    // ---------------------------------------------------------------- immutables (§2)

    /// @notice `dom = H(T_DOM, chain_id, vault, version)`.
    uint256 public immutable dom;
    /// @notice `x_e = H(T_EXIT, dom)`.
    uint256 public immutable exitChallenge;
    /// @notice The EIP-712 domain separator ("nullgate", "1", chain id, this vault).
    bytes32 public immutable DOMAIN_SEPARATOR;
    /// @notice The exit circuit's Groth16 verifier.
    IExitVerifier public immutable exitVerifier;
    /// @notice The asset: address(0) for native ETH, else an ERC-20.
    address public immutable asset;
    /// @notice Token base units per credit unit.
    uint256 public immutable unitSize;
    /// @notice Minimum deposit, in credit units.
    uint64 public immutable minDeposit;
    /// @notice The largest cost class `C_max`.
    uint64 public immutable maxCostClass;
    /// @notice The floor fee `Δ_min`.
    uint64 public immutable floorFee;
    /// @notice The exit challenge window `W`, seconds.
    uint64 public immutable exitWindow;
    /// @notice The expiry grace `G_exp`, seconds.
    uint64 public immutable expiryGrace;
    /// @notice The note lifetime `TTL`, seconds.
    uint64 public immutable noteLifetime;
    /// @notice SHA-256 of the request proving key (compressed, §11).
    bytes32 public immutable requestProvingKeyHash;
    /// @notice SHA-256 of the exit proving key.
    bytes32 public immutable exitProvingKeyHash;
    /// @notice SHA-256 of the request verifying key.
    bytes32 public immutable requestVerifyingKeyHash;
    /// @notice SHA-256 of the exit verifying key.
    bytes32 public immutable exitVerifyingKeyHash;
    /// @notice True when the keys come from a local dev setup (only on chain ids 31337, 1337).
    bool public immutable devKeys;
    /// @notice The operator, who changes the parameters of §2.
    address public immutable operator;

    // ---------------------------------------------------------------- storage

    /// Cost classes, ascending (§2); fixed at deployment.
    uint64[] internal _costClasses;

    /// Notes by commitment.
    mapping(uint256 => Note) internal _notes;
    /// Pending payouts of Exiting notes, by commitment.
    mapping(uint256 => ExitClaim) internal _exitClaims;
    /// State keys by absolute number (1-based).
    mapping(uint32 => StateKey) internal _keys;

    /// @notice How many notes were deposited.
    uint32 public depositCount;
    /// @notice Deposits are paused.
    bool public depositsPaused;
    /// @notice How many state keys were registered (`PK_1..PK_keyCount`).
    uint32 public keyCount;
    /// @notice When the last key was registered.
    uint64 public lastKeyRegistration;
    /// The running digest of §3 / §11 XOR `DIGEST_MASK`: the slot is non-zero from
    /// deployment, so the first deposit does not pay for creating it (read `depositsDigest`).
    bytes32 private _maskedDigest;

    /// @notice The treasury's credit, in credit units, withdrawn by `withdrawTreasury`.
    uint256 public treasuryCredit;
    /// @notice The treasury address.
    address public treasury;
    /// @notice The clearance signer (§8).
    address public clearanceSigner;
    /// @notice The gateway's OHTTP key configurations (§11 hash).
    bytes32 public ohttpKeysHash;

    bytes32 internal _priceListHash;
    bytes32 internal _pendingPriceListHash;
    uint64 internal _pendingPriceListAt;

    bool internal transient _locked;

    // ---------------------------------------------------------------- construction

    /// @notice Deploys a vault; checks §2's rules on the immutable parameters.
    /// @param d The deployment parameters.
    constructor(Deployment memory d) {
        if (address(d.exitVerifier) == address(0) || d.operator == address(0)) revert ZeroAddress();
        if (d.treasury == address(0) || d.clearanceSigner == address(0)) revert ZeroAddress();
        if (address(d.exitVerifier).code.length == 0) revert BadDeployment("verifier has no code");
        if (d.asset != address(0) && d.asset.code.length == 0) revert BadDeployment("asset has no code");
        if (d.unitSize == 0 || d.unitSize > type(uint128).max) revert BadDeployment("unit size");
        if (d.minDeposit == 0) revert BadDeployment("minimum deposit");
        uint256 classes = d.costClasses.length;
        if (classes == 0 || classes > 8) revert BadDeployment("cost classes: 1 to 8");
        if (d.costClasses[0] == 0) revert BadDeployment("cost classes: C_1 > 0");
        for (uint256 i = 1; i < classes; i++) {
            if (d.costClasses[i] <= d.costClasses[i - 1]) revert BadDeployment("cost classes: increasing");
        }
        if (d.floorFee > d.costClasses[0]) revert BadDeployment("floor fee above C_1");
        if (d.exitWindow == 0) revert BadDeployment("exit window");
        if (d.expiryGrace < d.exitWindow) revert BadDeployment("G_exp below W");
        if (d.noteLifetime == 0 || d.noteLifetime > MAX_NOTE_LIFETIME) revert BadDeployment("note lifetime");
        if (d.expiryGrace > d.noteLifetime) revert BadDeployment("G_exp above TTL");
        if (
            d.requestProvingKeyHash == 0 || d.exitProvingKeyHash == 0 || d.requestVerifyingKeyHash == 0
                || d.exitVerifyingKeyHash == 0
        ) revert BadDeployment("key hash");
        if (d.devKeys && block.chainid != 31337 && block.chainid != 1337) {
            revert DevKeysOnPublicChain(block.chainid);
        }
        _checkKeyPoint(d.stateKeyX, d.stateKeyY);

        uint256 domain = PoseidonT5.hash(T_DOM, block.chainid, uint256(uint160(address(this))), VERSION);
        dom = domain;
        exitChallenge = PoseidonT3.hash(T_EXIT, domain);
        DOMAIN_SEPARATOR = keccak256(
            abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256("nullgate"), keccak256("1"), block.chainid, address(this))
        );
        exitVerifier = d.exitVerifier;
        asset = d.asset;
        unitSize = d.unitSize;
        minDeposit = d.minDeposit;
        maxCostClass = d.costClasses[classes - 1];
        floorFee = d.floorFee;
        exitWindow = d.exitWindow;
        expiryGrace = d.expiryGrace;
        noteLifetime = d.noteLifetime;
        requestProvingKeyHash = d.requestProvingKeyHash;
        exitProvingKeyHash = d.exitProvingKeyHash;
        requestVerifyingKeyHash = d.requestVerifyingKeyHash;
        exitVerifyingKeyHash = d.exitVerifyingKeyHash;
        devKeys = d.devKeys;
        operator = d.operator;
        _costClasses = d.costClasses;

        treasury = d.treasury;
        clearanceSigner = d.clearanceSigner;
        _priceListHash = d.priceListHash;
        ohttpKeysHash = d.ohttpKeysHash;

        _maskedDigest = DIGEST_MASK; // the digest starts at zero (§11)
        _keys[1] = StateKey(d.stateKeyX, d.stateKeyY, uint64(block.timestamp), false, 0);
        keyCount = 1;
        lastKeyRegistration = uint64(block.timestamp);
        emit KeyRegistered(1, d.stateKeyX, d.stateKeyY, uint64(block.timestamp));
    }

    // ---------------------------------------------------------------- modifiers

    modifier nonReentrant() {
        if (_locked) revert Reentrancy();
        _locked = true;
        _;
        _locked = false;
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    // ---------------------------------------------------------------- deposits (§3)

    /// @notice Deposits one note: commitment `C = H(T_ID, k)`, amount `D` credit units.
    /// @dev Pays exactly `D · unitSize`: as `msg.value` for ETH, else by `transferFrom`.
    /// @param commitment The note commitment `C`, `0 < C < p`.
    /// @param amount The deposit `D` in credit units, at least `minDeposit`.
    function deposit(uint256 commitment, uint64 amount) external payable nonReentrant {
        (uint32 count, bytes32 digest) = _depositState();
        (count, digest) = _addNote(commitment, amount, count, digest);
        depositCount = count;
        _maskedDigest = digest ^ DIGEST_MASK;
        _collect(uint256(amount) * unitSize);
    }

    /// @notice Deposits several notes in one transaction (a wallet splits its deposit).
    /// @param commitments The commitments, each `0 < C < p`.
    /// @param amounts The amounts, in the same order.
    function depositMany(uint256[] calldata commitments, uint64[] calldata amounts) external payable nonReentrant {
        uint256 n = commitments.length;
        if (n == 0 || n != amounts.length) revert BadDepositList();
        (uint32 count, bytes32 digest) = _depositState();
        uint256 total;
        for (uint256 i = 0; i < n; i++) {
            (count, digest) = _addNote(commitments[i], amounts[i], count, digest);
            total += amounts[i];
        }
        depositCount = count;
        _maskedDigest = digest ^ DIGEST_MASK;
        _collect(total * unitSize);
    }

    // ---------------------------------------------------------------- leaving (§8)

    /// @notice Starts an exit of an Active note, verified by an exit proof (§8).
    /// @param commitment The note's commitment `C`.
    /// @param keyNumber The absolute number `i` of the state key `PK_i` the proof uses.
    /// @param payout `P ≤ D`, credit units, paid to `recipient` by `finalizeExit`.
    /// @param recipient Receives `P`; a public input of the proof.
    /// @param nullifier `N_n`, the RLN nullifier at the declared index `n`.
    /// @param share `y_e = k + a_n·x_e`.
    /// @param proof The Groth16 proof, uncompressed.
    function initiateExit(
        uint256 commitment,
        uint32 keyNumber,
        uint64 payout,
        address recipient,
        uint256 nullifier,
        uint256 share,
        uint256[8] calldata proof
    ) external {
        Note memory note = _checkExit(commitment, keyNumber, payout, recipient, nullifier, share, proof);
        uint64 deadline = uint64(block.timestamp) + exitWindow;
        Note storage stored = _notes[commitment];
        stored.status = Status.Exiting;
        stored.exitDeadline = deadline;
        _exitClaims[commitment] = ExitClaim(recipient, payout);
        emit ExitInitiated(note.noteId, nullifier, share, payout, deadline);
    }

    /// @notice Pays an exit once its window has passed: `P` to the recipient, `D − P` to the
    /// treasury's credit.
    /// @param commitment The note's commitment `C`.
    function finalizeExit(uint256 commitment) external nonReentrant {
        _checkField(commitment);
        Note storage stored = _notes[commitment];
        Note memory note = stored;
        if (note.status != Status.Exiting) revert WrongNoteStatus(note.status);
        if (block.timestamp < note.exitDeadline) revert ExitWindowOpen(note.exitDeadline);
        ExitClaim memory claim = _exitClaims[commitment];
        stored.status = Status.Closed;
        delete _exitClaims[commitment];
        treasuryCredit += note.amount - claim.payout;
        emit ExitFinalized(note.noteId);
        _pay(claim.recipient, uint256(claim.payout) * unitSize);
    }

    /// @notice Mutual close: the same arguments and checks as `initiateExit`, plus the
    /// clearance signer's EIP-712 `Clearance(nullifier)`; pays at once (§8).
    /// @param commitment The note's commitment `C`.
    /// @param keyNumber The absolute number of the state key the proof uses.
    /// @param payout `P ≤ D`, credit units.
    /// @param recipient Receives `P`.
    /// @param nullifier `N_n`.
    /// @param share `y_e`.
    /// @param proof The Groth16 proof, uncompressed.
    /// @param clearance The 65-byte signature `r ‖ s ‖ v` by the clearance signer.
    function closeWithClearance(
        uint256 commitment,
        uint32 keyNumber,
        uint64 payout,
        address recipient,
        uint256 nullifier,
        uint256 share,
        uint256[8] calldata proof,
        bytes calldata clearance
    ) external nonReentrant {
        Note memory note = _checkExit(commitment, keyNumber, payout, recipient, nullifier, share, proof);
        if (_clearanceSigner(nullifier, clearance) != clearanceSigner) revert InvalidClearance();
        _notes[commitment].status = Status.Closed;
        treasuryCredit += note.amount - payout;
        emit NoteClosed(note.noteId, nullifier, share, payout);
        _pay(recipient, uint256(payout) * unitSize);
    }

    /// @notice Slashes the note of secret `k`: all of `D` to the treasury's credit (§8).
    /// @param k The note secret, `< p`; the note is the one with `C = H(T_ID, k)`.
    function slash(uint256 k) external {
        _checkField(k);
        uint256 commitment = PoseidonT3.hash(T_ID, k);
        Note storage stored = _notes[commitment];
        Note memory note = stored;
        if (note.status != Status.Active && note.status != Status.Exiting) {
            if (note.status == Status.None) revert UnknownNote(commitment);
            revert WrongNoteStatus(note.status);
        }
        stored.status = Status.Slashed;
        if (note.status == Status.Exiting) delete _exitClaims[commitment];
        treasuryCredit += note.amount;
        emit NoteSlashed(note.noteId);
    }

    /// @notice Credits an Active note's whole `D` to the treasury once
    /// `block.timestamp ≥ 3600·expiry + G_exp` (§8).
    /// @param commitment The note's commitment `C`.
    function claimExpired(uint256 commitment) external {
        _checkField(commitment);
        Note storage stored = _notes[commitment];
        Note memory note = stored;
        if (note.status != Status.Active) {
            if (note.status == Status.None) revert UnknownNote(commitment);
            revert WrongNoteStatus(note.status);
        }
        uint256 claimableAt = _exitDeadline(note.expiry);
        if (block.timestamp < claimableAt) revert NotYetExpired(claimableAt);
        stored.status = Status.Expired;
        treasuryCredit += note.amount;
        emit NoteExpired(note.noteId);
    }

    /// @notice The treasury withdraws its whole credit (`treasuryCredit · unitSize`).
    function withdrawTreasury() external nonReentrant {
        if (msg.sender != treasury) revert NotTreasury();
        uint256 units = treasuryCredit;
        if (units == 0) revert NothingToWithdraw();
        treasuryCredit = 0;
        emit TreasuryWithdrawn(msg.sender, units);
        _pay(msg.sender, units * unitSize);
    }

    // ---------------------------------------------------------------- operator (§2)

    /// @notice Registers state key `PK_{keyCount+1}`, current from `activation`.
    /// @param x The key's x coordinate (EIP-2494), `< p`.
    /// @param y The key's y coordinate, `< p`.
    /// @param activation When it becomes current: at least `W + G_exp` from now.
    function registerKey(uint256 x, uint256 y, uint64 activation) external onlyOperator {
        uint256 allowedAt = uint256(lastKeyRegistration) + KEY_REGISTRATION_INTERVAL;
        if (block.timestamp < allowedAt) revert KeyRegistrationTooSoon(allowedAt);
        uint256 earliest = block.timestamp + exitWindow + expiryGrace;
        if (activation < earliest) revert ActivationTooSoon(activation, earliest);
        _checkKeyPoint(x, y);
        uint32 number = keyCount + 1;
        _keys[number] = StateKey(x, y, activation, false, 0);
        keyCount = number;
        lastKeyRegistration = uint64(block.timestamp);
        emit KeyRegistered(number, x, y, activation);
    }

    /// @notice Revokes a leaked key: exits under it stay valid only for notes deposited before
    /// now. Revoking the current key makes `successor` current at once.
    /// @param number The key to revoke.
    /// @param successor A registered, unrevoked key, required when `number` is current
    /// (ignored otherwise).
    function revokeKey(uint32 number, uint32 successor) external onlyOperator {
        StateKey storage key = _keys[number];
        if (number == 0 || number > keyCount) revert UnknownKey(number);
        if (key.revoked) revert KeyAlreadyRevoked(number);
        bool wasCurrent = number == currentKeyNumber();
        key.revoked = true;
        key.depositCountAtRevocation = depositCount;
        emit KeyRevoked(number, depositCount);
        if (wasCurrent) {
            if (successor == number || successor == 0 || successor > keyCount || _keys[successor].revoked) {
                revert BadSuccessor(successor);
            }
            StateKey storage next = _keys[successor];
            if (next.activation > block.timestamp) next.activation = uint64(block.timestamp);
            // The successor must now be the current key (a later-numbered active key would be).
            if (currentKeyNumber() != successor) revert BadSuccessor(successor);
            emit ParameterChanged("currentKey", bytes32(uint256(successor)), uint64(block.timestamp));
        }
    }

    /// @notice Sets the price list hash; it takes effect after `W`.
    /// @param value SHA-256 of the price list as served.
    function setPriceListHash(bytes32 value) external onlyOperator {
        _priceListHash = priceListHash();
        uint64 effectiveAt = uint64(block.timestamp) + exitWindow;
        _pendingPriceListHash = value;
        _pendingPriceListAt = effectiveAt;
        emit ParameterChanged("priceListHash", value, effectiveAt);
    }

    /// @notice Sets the OHTTP key configurations hash, at once.
    /// @param value SHA-256 of the `application/ohttp-keys` body.
    function setOhttpKeysHash(bytes32 value) external onlyOperator {
        ohttpKeysHash = value;
        emit ParameterChanged("ohttpKeysHash", value, uint64(block.timestamp));
    }

    /// @notice Sets the treasury address, at once; the new treasury withdraws the credit.
    /// @param value The new treasury.
    function setTreasury(address value) external onlyOperator {
        if (value == address(0)) revert ZeroAddress();
        treasury = value;
        emit ParameterChanged("treasury", bytes32(uint256(uint160(value))), uint64(block.timestamp));
    }

    /// @notice Sets the clearance signer, at once.
    /// @param value The new signer.
    function setClearanceSigner(address value) external onlyOperator {
        if (value == address(0)) revert ZeroAddress();
        clearanceSigner = value;
        emit ParameterChanged("clearanceSigner", bytes32(uint256(uint160(value))), uint64(block.timestamp));
    }

    /// @notice Pauses or resumes deposits (only deposits), at once.
    /// @param paused True to pause.
    function setDepositsPaused(bool paused) external onlyOperator {
        depositsPaused = paused;
        emit ParameterChanged("depositsPaused", bytes32(uint256(paused ? 1 : 0)), uint64(block.timestamp));
    }

    // ---------------------------------------------------------------- views

    /// @notice The running digest of the deposits (§3, §11): zero before the first deposit.
    /// @return The digest.
    function depositsDigest() public view returns (bytes32) {
        return _maskedDigest ^ DIGEST_MASK;
    }

    /// @notice The note with commitment `commitment` (status None if there is none).
    /// @param commitment The commitment `C`.
    /// @return The note.
    function noteOf(uint256 commitment) external view returns (Note memory) {
        return _notes[commitment];
    }

    /// @notice The pending payout of an Exiting note.
    /// @param commitment The commitment `C`.
    /// @return The recipient and payout (zero unless Exiting).
    function exitClaimOf(uint256 commitment) external view returns (ExitClaim memory) {
        return _exitClaims[commitment];
    }

    /// @notice State key `number`.
    /// @param number The absolute key number (from 1).
    /// @return The key; all zero if unregistered.
    function stateKey(uint32 number) external view returns (StateKey memory) {
        return _keys[number];
    }

    /// @notice The current state key: the highest-numbered unrevoked key whose activation has
    /// passed (the gateway signs new states only with it).
    /// @return The key number, or 0 if none (every key revoked).
    function currentKeyNumber() public view returns (uint32) {
        for (uint32 i = keyCount; i > 0; i--) {
            StateKey storage key = _keys[i];
            if (!key.revoked && key.activation <= block.timestamp) return i;
        }
        return 0;
    }

    /// @notice The cost classes `C_1 < … < C_max`.
    /// @return The classes, ascending.
    function costClasses() external view returns (uint64[] memory) {
        return _costClasses;
    }

    /// @notice The price list hash in effect now.
    /// @return The hash.
    function priceListHash() public view returns (bytes32) {
        if (_pendingPriceListAt != 0 && block.timestamp >= _pendingPriceListAt) return _pendingPriceListHash;
        return _priceListHash;
    }

    /// @notice A price list hash change not yet in effect.
    /// @return value The pending hash.
    /// @return effectiveAt When it takes effect (0 when nothing is pending).
    function pendingPriceListHash() external view returns (bytes32 value, uint64 effectiveAt) {
        if (_pendingPriceListAt == 0 || block.timestamp >= _pendingPriceListAt) return (bytes32(0), 0);
        return (_pendingPriceListHash, _pendingPriceListAt);
    }

    /// @notice The EIP-712 digest the clearance signer signs for `nullifier`.
    /// @param nullifier `N_n`.
    /// @return The digest.
    function clearanceDigest(uint256 nullifier) public view returns (bytes32) {
        return
            keccak256(
                abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR, keccak256(abi.encode(CLEARANCE_TYPEHASH, nullifier)))
            );
    }

    // ---------------------------------------------------------------- internals

    function _depositState() private view returns (uint32 count, bytes32 digest) {
        if (depositsPaused) revert DepositsPaused();
        return (depositCount, depositsDigest());
    }

    function _addNote(uint256 commitment, uint64 amount, uint32 count, bytes32 digest)
        private
        returns (uint32, bytes32)
    {
        if (commitment == 0) revert ZeroCommitment();
        _checkField(commitment);
        if (amount < minDeposit) revert DepositBelowMinimum(amount, minDeposit);
        if (count >= MAX_NOTES) revert VaultFull();
        Note storage stored = _notes[commitment];
        if (stored.status != Status.None) revert DuplicateCommitment(commitment);
        // 24·ceil((ts + TTL) / 86400) hours: rounded up to a day boundary (§3).
        uint32 expiry = uint32(24 * ((block.timestamp + noteLifetime + 86399) / 86400));
        uint32 noteId = count;
        _notes[commitment] = Note(uint24(noteId), amount, expiry, Status.Active, 0);
        digest = keccak256(abi.encodePacked(digest, noteId, commitment, amount, expiry));
        emit NoteDeposited(noteId, commitment, amount, expiry);
        return (count + 1, digest);
    }

    /// Takes `value` base units from the caller: exactly `msg.value` for ETH; for an ERC-20,
    /// no ETH and a balance increase of at least `value`.
    function _collect(uint256 value) private {
        if (asset == address(0)) {
            if (msg.value != value) revert WrongPayment(msg.value, value);
            return;
        }
        if (msg.value != 0) revert WrongPayment(msg.value, 0);
        uint256 before = IERC20Minimal(asset).balanceOf(address(this));
        _tokenCall(abi.encodeWithSelector(0x23b872dd, msg.sender, address(this), value)); // transferFrom
        uint256 received = IERC20Minimal(asset).balanceOf(address(this)) - before;
        if (received < value) revert TokenAmountShort(received, value);
    }

    function _pay(address to, uint256 value) private {
        if (value == 0) return;
        if (asset == address(0)) {
            (bool ok,) = to.call{value: value}("");
            if (!ok) revert EthTransferFailed();
        } else {
            _tokenCall(abi.encodeWithSelector(0xa9059cbb, to, value)); // transfer
        }
    }

    /// Calls the token; accepts success with no return data or a true boolean.
    function _tokenCall(bytes memory data) private {
        (bool ok, bytes memory ret) = asset.call(data);
        if (!ok || (ret.length != 0 && (ret.length != 32 || abi.decode(ret, (uint256)) != 1))) {
            revert TokenCallFailed();
        }
    }

    /// The checks shared by `initiateExit` and `closeWithClearance` (§8), proof included.
    function _checkExit(
        uint256 commitment,
        uint32 keyNumber,
        uint64 payout,
        address recipient,
        uint256 nullifier,
        uint256 share,
        uint256[8] calldata proof
    ) private view returns (Note memory note) {
        _checkField(commitment);
        _checkField(nullifier);
        _checkField(share);
        note = _notes[commitment];
        if (note.status != Status.Active) {
            if (note.status == Status.None) revert UnknownNote(commitment);
            revert WrongNoteStatus(note.status);
        }
        uint256 deadline = _exitDeadline(note.expiry);
        if (block.timestamp >= deadline) revert ExitDeadlinePassed(deadline);
        if (payout > note.amount) revert PayoutExceedsDeposit(payout, note.amount);
        if (recipient == address(0)) revert ZeroRecipient();
        if (keyNumber == 0 || keyNumber > keyCount) revert UnknownKey(keyNumber);
        StateKey storage key = _keys[keyNumber];
        if (key.revoked && note.noteId >= key.depositCountAtRevocation) {
            revert KeyRevokedForNote(keyNumber, note.noteId);
        }
        uint256[12] memory input = [
            dom,
            uint256(note.noteId),
            commitment,
            uint256(note.amount),
            key.x,
            key.y,
            uint256(maxCostClass),
            uint256(payout),
            uint256(uint160(recipient)),
            nullifier,
            exitChallenge,
            share
        ];
        try exitVerifier.verifyProof(proof, input) {}
        catch {
            revert InvalidExitProof();
        }
    }

    /// `3600·expiry + G_exp`: exits before, expiry claims from then (§8).
    function _exitDeadline(uint32 expiry) private view returns (uint256) {
        return uint256(expiry) * 3600 + expiryGrace;
    }

    function _clearanceSigner(uint256 nullifier, bytes calldata signature) private view returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > SECP256K1_HALF_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(clearanceDigest(nullifier), v, r, s);
    }

    function _checkKeyPoint(uint256 x, uint256 y) private pure {
        _checkField(x);
        _checkField(y);
        if (!BabyJubJub.isValidSubgroupPoint(x, y)) revert InvalidKeyPoint();
    }

    function _checkField(uint256 value) private pure {
        if (value >= FIELD_MODULUS) revert FieldElementOutOfRange(value);
    }
}
