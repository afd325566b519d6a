// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {NoteVault} from "../src/NoteVault.sol";
import {IExitVerifier} from "../src/IExitVerifier.sol";
import {PoseidonT3, PoseidonT5} from "../src/generated/Poseidon.sol";
import {
    Vm,
    TestToken,
    TestOnlyExitVerifier,
    GasMeasuringExitVerifier,
    RevertingTreasury,
    ReentrantRecipient,
    ReentrantTreasury
} from "./Support.sol";

/// Shared fixtures: a native-ETH vault on chain 31337 with dev keys, verified by the
/// test-only verifier (exit tests check the vault's own logic around the proof).
abstract contract VaultTestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    // Baby-JubJub Base8 (G), 2G and 3G in EIP-2494 coordinates.
    uint256 internal constant GX = 0x0bb77a6ad63e739b4eacb2e09d6277c12ab8d8010534e0b62893f3f6bb957051;
    uint256 internal constant GY = 0x25797203f7a0b24925572e1cd16bf9edfce0051fb9e133774b3c257a872d7d8b;
    uint256 internal constant G2X = 0x162d7e417903fa1c82f2d227e35b846b1133cfca4f558b5feb9fdcd5f81dd902;
    uint256 internal constant G2Y = 0x01666cafbf0a30da8b9ebeaf848a1da067a892296f1043188e1705402b6d6853;
    uint256 internal constant G3X = 0x061c1436d1c3008037e887c8234dcf7c33c947ad93695b8000fcb4ab70477e3e;
    uint256 internal constant G3Y = 0x21d66f0e2295ae954494f25889f9319cc1b4df71eff3f46ba9e4631b43fd7c95;

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant UNIT = 1e12;
    uint64 internal constant MIN_DEPOSIT = 100;
    uint64 internal constant W = 72 hours;
    uint64 internal constant G_EXP = 14 days;
    uint64 internal constant TTL = 90 days;
    uint256 internal constant CLEARANCE_KEY = 0xc1ea7;

    address internal constant OPERATOR = address(0x0BE7A70B);
    address internal constant TREASURY = address(0x7BEA5);
    address internal constant USER = address(0x05E7);
    address internal constant RECIPIENT = address(0x7EC1);

    NoteVault internal vault;
    TestOnlyExitVerifier internal verifier;
    uint256[8] internal proof = [uint256(1), 2, 3, 4, 5, 6, 7, 8];

    function setUp() public virtual {
        vm.warp(START);
        verifier = new TestOnlyExitVerifier();
        vault = new NoteVault(deployment(address(0)));
        vm.deal(USER, 1_000_000 ether);
    }

    function deployment(address asset) internal view returns (NoteVault.Deployment memory d) {
        uint64[] memory classes = new uint64[](3);
        classes[0] = 10;
        classes[1] = 100;
        classes[2] = 1000;
        d.exitVerifier = verifier;
        d.asset = asset;
        d.unitSize = UNIT;
        d.minDeposit = MIN_DEPOSIT;
        d.costClasses = classes;
        d.floorFee = 1;
        d.exitWindow = W;
        d.expiryGrace = G_EXP;
        d.noteLifetime = TTL;
        d.requestProvingKeyHash = keccak256("request pk");
        d.exitProvingKeyHash = keccak256("exit pk");
        d.requestVerifyingKeyHash = keccak256("request vk");
        d.exitVerifyingKeyHash = keccak256("exit vk");
        d.devKeys = true;
        d.stateKeyX = GX;
        d.stateKeyY = GY;
        d.operator = OPERATOR;
        d.treasury = TREASURY;
        d.clearanceSigner = vm.addr(CLEARANCE_KEY);
        d.priceListHash = keccak256("prices v1");
        d.ohttpKeysHash = keccak256("ohttp v1");
    }

    // ---- helpers

    function commitmentOf(uint256 k) internal pure returns (uint256) {
        return PoseidonT3.hash(2, k);
    }

    function depositNote(uint256 k, uint64 amount) internal returns (uint256 c) {
        c = commitmentOf(k);
        vm.prank(USER);
        vault.deposit{value: uint256(amount) * UNIT}(c, amount);
    }

    function exitInputs(uint256 c, uint32 keyNumber, uint64 payout, address to, uint256 n, uint256 y)
        internal
        view
        returns (uint256[12] memory input)
    {
        NoteVault.Note memory note = vault.noteOf(c);
        NoteVault.StateKey memory key = vault.stateKey(keyNumber);
        input = [
            vault.dom(),
            uint256(note.noteId),
            c,
            uint256(note.amount),
            key.x,
            key.y,
            uint256(vault.maxCostClass()),
            uint256(payout),
            uint256(uint160(to)),
            n,
            vault.exitChallenge(),
            y
        ];
    }

    /// Registers the proof for exactly these public inputs with the test-only verifier.
    function acceptExit(uint256 c, uint32 keyNumber, uint64 payout, address to, uint256 n, uint256 y) internal {
        verifier.accept(proof, exitInputs(c, keyNumber, payout, to, n, y));
    }

    function initiate(uint256 c, uint64 payout, address to) internal {
        acceptExit(c, 1, payout, to, 111, 222);
        vault.initiateExit(c, 1, payout, to, 111, 222, proof);
    }

    function clearance(uint256 key, uint256 nullifier) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, vault.clearanceDigest(nullifier));
        return abi.encodePacked(r, s, v);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": values differ"));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": values differ"));
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    function assertTrue(bool ok, string memory what) internal pure {
        if (!ok) revert(what);
    }

    function status(uint256 c) internal view returns (NoteVault.Status) {
        return vault.noteOf(c).status;
    }
}

contract DeploymentTest is VaultTestBase {
    function test_ConstructorComputesDomAndExitChallenge() public view {
        uint256 dom = PoseidonT5.hash(1, block.chainid, uint256(uint160(address(vault))), 1);
        assertEq(vault.dom(), dom, "dom");
        assertEq(vault.exitChallenge(), PoseidonT3.hash(10, dom), "x_e");
        assertEq(vault.maxCostClass(), 1000, "C_max");
        assertEq(vault.keyCount(), 1, "key count");
        assertEq(vault.currentKeyNumber(), 1, "PK_1 current from deployment");
        assertEq(vault.stateKey(1).x, GX, "PK_1");
        assertTrue(vault.devKeys(), "devKeys");
        assertEq(vault.exitVerifyingKeyHash(), keccak256("exit vk"), "pinned hash");
        assertEq(vault.priceListHash(), keccak256("prices v1"), "price list");
        assertEq(vault.costClasses().length, 3, "classes");
    }

    function test_Eip712DomainSeparator() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes("nullgate")),
                keccak256(bytes("1")),
                uint256(31337),
                address(vault)
            )
        );
        assertEq(vault.DOMAIN_SEPARATOR(), expected, "domain separator");
    }

    function test_RevertWhen_DevKeysOnNonDevChain() public {
        vm.chainId(1);
        NoteVault.Deployment memory d = deployment(address(0));
        vm.expectRevert(abi.encodeWithSelector(NoteVault.DevKeysOnPublicChain.selector, 1));
        new NoteVault(d);
    }

    function test_DevKeysAcceptedOn1337AndProductionKeysOnMainnet() public {
        vm.chainId(1337);
        new NoteVault(deployment(address(0)));
        vm.chainId(1);
        NoteVault.Deployment memory d = deployment(address(0));
        d.devKeys = false;
        NoteVault v = new NoteVault(d);
        assertEq(v.dom(), PoseidonT5.hash(1, 1, uint256(uint160(address(v))), 1), "dom on chain 1");
    }

    function expectBadDeployment(NoteVault.Deployment memory d, string memory reason) internal {
        vm.expectRevert(abi.encodeWithSelector(NoteVault.BadDeployment.selector, reason));
        new NoteVault(d);
    }

    function test_RevertWhen_CostClassesBreakTheRules() public {
        NoteVault.Deployment memory d = deployment(address(0));
        d.costClasses = new uint64[](0);
        expectBadDeployment(d, "cost classes: 1 to 8");
        d.costClasses = new uint64[](9);
        expectBadDeployment(d, "cost classes: 1 to 8");
        d = deployment(address(0));
        d.costClasses[1] = 10; // equal to C_1
        expectBadDeployment(d, "cost classes: increasing");
        d = deployment(address(0));
        d.floorFee = 11; // above C_1 = 10
        expectBadDeployment(d, "floor fee above C_1");
        d = deployment(address(0));
        d.costClasses[0] = 0;
        expectBadDeployment(d, "cost classes: C_1 > 0");
    }

    function test_RevertWhen_TimesOrAmountsBreakTheRules() public {
        NoteVault.Deployment memory d = deployment(address(0));
        d.expiryGrace = W - 1;
        expectBadDeployment(d, "G_exp below W");
        d = deployment(address(0));
        d.exitWindow = 0;
        expectBadDeployment(d, "exit window");
        d = deployment(address(0));
        d.noteLifetime = 0;
        expectBadDeployment(d, "note lifetime");
        // A TTL whose expiry (hours) would not fit 32 bits, and one just above the bound.
        d = deployment(address(0));
        d.noteLifetime = uint64(uint256(type(uint32).max) * 3600);
        expectBadDeployment(d, "note lifetime");
        d = deployment(address(0));
        d.noteLifetime = uint64(3650 days + 1);
        expectBadDeployment(d, "note lifetime");
        // Windows longer than a note's life.
        d = deployment(address(0));
        d.expiryGrace = d.noteLifetime + 1;
        expectBadDeployment(d, "G_exp above TTL");
        // The bound itself is accepted.
        d = deployment(address(0));
        d.noteLifetime = uint64(3650 days);
        new NoteVault(d);
        d = deployment(address(0));
        d.unitSize = 0;
        expectBadDeployment(d, "unit size");
        d = deployment(address(0));
        d.minDeposit = 0;
        expectBadDeployment(d, "minimum deposit");
        d = deployment(address(0));
        d.exitVerifyingKeyHash = 0;
        expectBadDeployment(d, "key hash");
        d = deployment(address(0));
        d.asset = address(0xdead);
        expectBadDeployment(d, "asset has no code");
        d = deployment(address(0));
        d.exitVerifier = IExitVerifier(address(0xbeef));
        expectBadDeployment(d, "verifier has no code");
        d = deployment(address(0));
        d.treasury = address(0);
        vm.expectRevert(NoteVault.ZeroAddress.selector);
        new NoteVault(d);
    }

    function test_RevertWhen_InitialKeyIsNotASubgroupPoint() public {
        NoteVault.Deployment memory d = deployment(address(0));
        d.stateKeyX = 0;
        d.stateKeyY = 1; // the identity
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        new NoteVault(d);
        d.stateKeyY = P - 1; // (0, -1): on the curve, order 2
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        new NoteVault(d);
    }
}

contract DepositTest is VaultTestBase {
    event NoteDeposited(uint32 noteId, uint256 commitment, uint64 amount, uint32 expiry);

    function test_DepositStoresNoteEmitsAndTakesExactValue() public {
        uint256 c = commitmentOf(42);
        // 24·ceil((ts + TTL) / 86400), worked by hand: (1_700_000_000 + 7_776_000) / 86_400
        // = 19_765.93, so 19_766 days = 474_384 hours.
        uint32 expiry = 474_384;
        vm.expectEmit();
        emit NoteDeposited(0, c, 500, expiry);
        vm.prank(USER);
        vault.deposit{value: 500 * UNIT}(c, 500);
        NoteVault.Note memory n = vault.noteOf(c);
        assertEq(n.noteId, 0, "note id");
        assertEq(n.amount, 500, "amount");
        assertEq(n.expiry, expiry, "expiry");
        assertTrue(n.status == NoteVault.Status.Active, "active");
        assertEq(vault.depositCount(), 1, "count");
        assertEq(address(vault).balance, 500 * UNIT, "balance");
        assertEq(depositNote(43, 100), commitmentOf(43), "second");
        assertEq(vault.noteOf(commitmentOf(43)).noteId, 1, "sequential ids");
    }

    function test_ExpiryOnADayBoundaryIsNotRoundedFurther() public {
        // ts + TTL exactly on a day boundary: expiry = (ts + TTL) / 3600.
        uint256 ts = 19_800 * 86_400 - TTL;
        vm.warp(ts);
        uint256 c = depositNote(7, 100);
        assertEq(vault.noteOf(c).expiry, 19_800 * 24, "boundary");
        vm.warp(ts + 1);
        c = depositNote(8, 100);
        assertEq(vault.noteOf(c).expiry, 19_801 * 24, "one second later");
    }

    function test_DepositsDigestMatchesAnIndependentComputation() public {
        bytes32 expected;
        assertEq(vault.depositsDigest(), expected, "the digest starts at zero");
        uint256[] memory cs = new uint256[](3);
        uint64[] memory ds = new uint64[](3);
        for (uint256 i = 0; i < 3; i++) {
            cs[i] = commitmentOf(1000 + i);
            ds[i] = uint64(100 + i);
        }
        uint256 c0 = depositNote(999, 250);
        vm.warp(START + 5 days);
        vm.prank(USER);
        vault.depositMany{value: 303 * UNIT}(cs, ds);

        // §11: keccak256(digest ‖ u32 note_id ‖ u256 C ‖ u64 D ‖ u32 expiry), 80 bytes each.
        bytes memory step = bytes.concat(expected, bytes4(uint32(0)), bytes32(c0), bytes8(uint64(250)));
        step = bytes.concat(step, bytes4(vault.noteOf(c0).expiry));
        assertEq(step.length, 80, "record length");
        expected = keccak256(step);
        for (uint256 i = 0; i < 3; i++) {
            uint32 expiry = vault.noteOf(cs[i]).expiry;
            assertEq(vault.noteOf(cs[i]).noteId, i + 1, "ids");
            expected =
                keccak256(bytes.concat(expected, bytes4(uint32(i + 1)), bytes32(cs[i]), bytes8(ds[i]), bytes4(expiry)));
        }
        assertEq(vault.depositsDigest(), expected, "digest");
        assertEq(vault.depositCount(), 4, "count");
    }

    function test_RevertWhen_CommitmentIsZeroOrNotAFieldElement() public {
        vm.startPrank(USER);
        vm.expectRevert(NoteVault.ZeroCommitment.selector);
        vault.deposit{value: 100 * UNIT}(0, 100);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.deposit{value: 100 * UNIT}(P, 100);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, type(uint256).max));
        vault.deposit{value: 100 * UNIT}(type(uint256).max, 100);
        vault.deposit{value: 100 * UNIT}(P - 1, 100); // p − 1 is fine
        vm.stopPrank();
    }

    function test_RevertWhen_DuplicateCommitment() public {
        uint256 c = depositNote(5, 100);
        vm.prank(USER);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.DuplicateCommitment.selector, c));
        vault.deposit{value: 100 * UNIT}(c, 100);
        // Also within one depositMany.
        uint256[] memory cs = new uint256[](2);
        uint64[] memory ds = new uint64[](2);
        cs[0] = commitmentOf(6);
        cs[1] = commitmentOf(6);
        ds[0] = 100;
        ds[1] = 100;
        vm.prank(USER);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.DuplicateCommitment.selector, cs[0]));
        vault.depositMany{value: 200 * UNIT}(cs, ds);
    }

    function test_RevertWhen_BelowMinimum() public {
        vm.prank(USER);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.DepositBelowMinimum.selector, 99, 100));
        vault.deposit{value: 99 * UNIT}(commitmentOf(1), 99);
    }

    function test_RevertWhen_WrongMsgValue() public {
        uint256 c = commitmentOf(1);
        vm.startPrank(USER);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongPayment.selector, 100 * UNIT - 1, 100 * UNIT));
        vault.deposit{value: 100 * UNIT - 1}(c, 100);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongPayment.selector, 100 * UNIT + 1, 100 * UNIT));
        vault.deposit{value: 100 * UNIT + 1}(c, 100);
        vm.stopPrank();
    }

    function test_RevertWhen_VaultIsFull() public {
        // Set depositCount to 2^24 − 1 in slot 4 (depositCount is its low 4 bytes).
        bytes32 slot = bytes32(uint256(4));
        uint256 packed = uint256(vm.load(address(vault), slot));
        packed = (packed & ~uint256(type(uint32).max)) | ((1 << 24) - 1);
        vm.store(address(vault), slot, bytes32(packed));
        uint256 last = depositNote(1, 100);
        assertEq(vault.noteOf(last).noteId, (1 << 24) - 1, "last id");
        vm.prank(USER);
        vm.expectRevert(NoteVault.VaultFull.selector);
        vault.deposit{value: 100 * UNIT}(commitmentOf(2), 100);
    }

    function test_RevertWhen_DepositManyListsAreBad() public {
        uint256[] memory cs = new uint256[](2);
        uint64[] memory ds = new uint64[](1);
        vm.startPrank(USER);
        vm.expectRevert(NoteVault.BadDepositList.selector);
        vault.depositMany(cs, ds);
        vm.expectRevert(NoteVault.BadDepositList.selector);
        vault.depositMany(new uint256[](0), new uint64[](0));
        cs = new uint256[](1);
        cs[0] = commitmentOf(1);
        ds[0] = 100;
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongPayment.selector, 99 * UNIT, 100 * UNIT));
        vault.depositMany{value: 99 * UNIT}(cs, ds);
        vm.stopPrank();
    }

    function test_PauseStopsDepositsOnly() public {
        uint256 exiting = depositNote(1, 100);
        uint256 slashed = depositNote(2, 100);
        uint256 closed = depositNote(3, 100);
        uint256 expired = depositNote(4, 100);
        vm.prank(OPERATOR);
        vault.setDepositsPaused(true);
        vm.prank(USER);
        vm.expectRevert(NoteVault.DepositsPaused.selector);
        vault.deposit{value: 100 * UNIT}(commitmentOf(5), 100);
        vm.prank(USER);
        vm.expectRevert(NoteVault.DepositsPaused.selector);
        vault.depositMany{value: 100 * UNIT}(new uint256[](1), new uint64[](1));
        // Exits, closes, slashes and claims go on.
        initiate(exiting, 60, RECIPIENT);
        vault.slash(2);
        acceptExit(closed, 1, 40, RECIPIENT, 333, 444);
        vault.closeWithClearance(closed, 1, 40, RECIPIENT, 333, 444, proof, clearance(CLEARANCE_KEY, 333));
        vm.warp(uint256(vault.noteOf(expired).expiry) * 3600 + G_EXP);
        vault.finalizeExit(exiting);
        vault.claimExpired(expired);
        assertTrue(status(exiting) == NoteVault.Status.Closed, "exit");
        assertTrue(status(slashed) == NoteVault.Status.Slashed, "slash");
        assertTrue(status(closed) == NoteVault.Status.Closed, "close");
        assertTrue(status(expired) == NoteVault.Status.Expired, "expiry");
        vm.prank(OPERATOR);
        vault.setDepositsPaused(false);
        depositNote(5, 100);
    }

    function testFuzz_NoteIdsFollowTheDepositCount(uint32 start) public {
        start = uint32(bound(start, 0, (1 << 24) - 2));
        bytes32 slot = bytes32(uint256(4));
        uint256 packed = uint256(vm.load(address(vault), slot));
        vm.store(address(vault), slot, bytes32((packed & ~uint256(type(uint32).max)) | start));
        uint256 a = depositNote(1, 100);
        uint256 b = depositNote(2, 200);
        assertEq(vault.noteOf(a).noteId, start, "first id");
        assertEq(vault.noteOf(b).noteId, uint256(start) + 1, "second id");
        assertEq(vault.depositCount(), uint256(start) + 2, "count");
        uint32 e = vault.noteOf(a).expiry;
        bytes32 d = keccak256(bytes.concat(bytes32(0), bytes4(start), bytes32(a), bytes8(uint64(100)), bytes4(e)));
        d = keccak256(bytes.concat(d, bytes4(start + 1), bytes32(b), bytes8(uint64(200)), bytes4(e)));
        assertEq(vault.depositsDigest(), d, "digest");
    }

    function testFuzz_DepositAnyAmountAndCommitment(uint256 c, uint64 amount) public {
        c = c % P;
        vm.assume(c != 0 && amount >= MIN_DEPOSIT);
        vm.deal(USER, uint256(amount) * UNIT);
        vm.prank(USER);
        vault.deposit{value: uint256(amount) * UNIT}(c, amount);
        NoteVault.Note memory n = vault.noteOf(c);
        assertEq(n.amount, amount, "amount");
        assertEq(n.noteId, 0, "id");
        assertEq(address(vault).balance, uint256(amount) * UNIT, "paid");
    }
}

contract ExitTest is VaultTestBase {
    event ExitInitiated(uint32 noteId, uint256 nullifier, uint256 share, uint64 payout, uint64 deadline);
    event ExitFinalized(uint32 noteId);

    function test_ExitPaysRecipientAndCreditsTreasuryAfterTheWindow() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 321, RECIPIENT, 111, 222);
        vm.expectEmit();
        emit ExitInitiated(0, 111, 222, 321, uint64(START + W));
        vault.initiateExit(c, 1, 321, RECIPIENT, 111, 222, proof);
        assertTrue(status(c) == NoteVault.Status.Exiting, "exiting");
        assertEq(vault.exitClaimOf(c).payout, 321, "claim");

        vm.warp(START + W - 1);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.ExitWindowOpen.selector, uint64(START + W)));
        vault.finalizeExit(c);

        vm.warp(START + W);
        vm.expectEmit();
        emit ExitFinalized(0);
        vault.finalizeExit(c);
        assertEq(RECIPIENT.balance, 321 * UNIT, "payout");
        assertEq(vault.treasuryCredit(), 500 - 321, "treasury credit");
        assertTrue(status(c) == NoteVault.Status.Closed, "closed");
        assertEq(address(vault).balance, (500 - 321) * UNIT, "held for the treasury");

        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Closed));
        vault.finalizeExit(c);
    }

    function test_PayoutOfZeroAndOfAllOfD() public {
        uint256 a = depositNote(1, 500);
        uint256 b = depositNote(2, 500);
        initiate(a, 0, RECIPIENT);
        initiate(b, 500, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(a);
        vault.finalizeExit(b);
        assertEq(RECIPIENT.balance, 500 * UNIT, "P = D paid, P = 0 paid nothing");
        assertEq(vault.treasuryCredit(), 500, "D of the zero payout");
    }

    function test_RevertWhen_PayoutExceedsDeposit() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 501, RECIPIENT, 111, 222);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.PayoutExceedsDeposit.selector, 501, 500));
        vault.initiateExit(c, 1, 501, RECIPIENT, 111, 222, proof);
    }

    function test_RevertWhen_ProofIsBad() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 100, RECIPIENT, 111, 222);
        uint256[8] memory other = proof;
        other[0] = 99;
        vm.expectRevert(NoteVault.InvalidExitProof.selector);
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, other);
        // Same proof, another share or payout: the vault's public inputs differ.
        vm.expectRevert(NoteVault.InvalidExitProof.selector);
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 223, proof);
        vm.expectRevert(NoteVault.InvalidExitProof.selector);
        vault.initiateExit(c, 1, 99, RECIPIENT, 111, 222, proof);
    }

    function test_RevertWhen_ProofIsReplayedWithAnotherRecipient() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 100, RECIPIENT, 111, 222);
        vm.expectRevert(NoteVault.InvalidExitProof.selector);
        vault.initiateExit(c, 1, 100, address(0xBAD), 111, 222, proof);
        vm.expectRevert(NoteVault.ZeroRecipient.selector);
        vault.initiateExit(c, 1, 100, address(0), 111, 222, proof);
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, proof);
    }

    function test_RevertWhen_ExitAfterTheGracePeriod() public {
        uint256 c = depositNote(1, 500);
        uint256 deadline = uint256(vault.noteOf(c).expiry) * 3600 + G_EXP;
        acceptExit(c, 1, 100, RECIPIENT, 111, 222);
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.ExitDeadlinePassed.selector, deadline));
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, proof);
        vm.warp(deadline - 1);
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, proof);
    }

    function test_RevertWhen_NoteIsExitingSlashedClosedOrUnknown() public {
        uint256 c = depositNote(1, 500);
        initiate(c, 100, RECIPIENT);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Exiting));
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, proof);

        uint256 s = depositNote(2, 500);
        vault.slash(2);
        acceptExit(s, 1, 100, RECIPIENT, 111, 222);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Slashed));
        vault.initiateExit(s, 1, 100, RECIPIENT, 111, 222, proof);

        vm.warp(START + W);
        vault.finalizeExit(c);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Closed));
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, 222, proof);

        uint256 unknown = commitmentOf(3);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownNote.selector, unknown));
        vault.initiateExit(unknown, 1, 100, RECIPIENT, 111, 222, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.None));
        vault.finalizeExit(unknown);
    }

    function test_RevertWhen_ExitFieldInputsAreNotBelowP() public {
        uint256 c = depositNote(1, 500);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.initiateExit(c, 1, 100, RECIPIENT, P, 222, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P + 5));
        vault.initiateExit(c, 1, 100, RECIPIENT, 111, P + 5, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.initiateExit(P, 1, 100, RECIPIENT, 111, 222, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.finalizeExit(P);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.claimExpired(P);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.slash(P);
    }

    function test_RevertWhen_KeyNumberIsUnknown() public {
        uint256 c = depositNote(1, 500);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownKey.selector, 0));
        vault.initiateExit(c, 0, 100, RECIPIENT, 111, 222, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownKey.selector, 2));
        vault.initiateExit(c, 2, 100, RECIPIENT, 111, 222, proof);
    }

    function test_RevokedKeyStillServesNotesDepositedBeforeTheAnnouncement() public {
        uint256 before = depositNote(1, 500);
        vm.warp(START + 30 days);
        vm.prank(OPERATOR);
        vault.registerKey(G2X, G2Y, uint64(block.timestamp + W + G_EXP));
        vm.prank(OPERATOR);
        vault.revokeKey(1, 2); // key 1 is current: key 2 becomes current at once
        assertEq(vault.currentKeyNumber(), 2, "successor current");
        uint256 afterwards = depositNote(2, 500);

        acceptExit(before, 1, 100, RECIPIENT, 111, 222);
        vault.initiateExit(before, 1, 100, RECIPIENT, 111, 222, proof);

        acceptExit(afterwards, 1, 100, RECIPIENT, 111, 222);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.KeyRevokedForNote.selector, 1, 1));
        vault.initiateExit(afterwards, 1, 100, RECIPIENT, 111, 222, proof);
        // Under the successor, with its own coordinates as public inputs.
        acceptExit(afterwards, 2, 100, RECIPIENT, 111, 222);
        vault.initiateExit(afterwards, 2, 100, RECIPIENT, 111, 222, proof);
    }

    function test_AnyRegisteredKeyIsValidForExitsBeforeItsActivation() public {
        uint256 c = depositNote(1, 500);
        vm.warp(START + 30 days);
        vm.prank(OPERATOR);
        vault.registerKey(G2X, G2Y, uint64(block.timestamp + W + G_EXP));
        assertEq(vault.currentKeyNumber(), 1, "key 2 not current yet");
        acceptExit(c, 2, 100, RECIPIENT, 111, 222);
        vault.initiateExit(c, 2, 100, RECIPIENT, 111, 222, proof);
    }

    function test_RevertingTreasuryCannotBlockExits() public {
        RevertingTreasury bad = new RevertingTreasury();
        vm.prank(OPERATOR);
        vault.setTreasury(address(bad));
        uint256 c = depositNote(1, 500);
        initiate(c, 200, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(c);
        assertEq(RECIPIENT.balance, 200 * UNIT, "paid");
        assertEq(vault.treasuryCredit(), 300, "credited");
        vm.expectRevert(NoteVault.EthTransferFailed.selector);
        bad.withdraw(vault);
        assertEq(vault.treasuryCredit(), 300, "credit kept after a failed withdrawal");
    }

    function test_ReentrantRecipientIsPaidOnce() public {
        ReentrantRecipient attacker = new ReentrantRecipient();
        uint256 c = depositNote(1, 500);
        depositNote(2, 500); // funds the attacker would drain
        attacker.arm(vault, c);
        initiate(c, 200, address(attacker));
        vm.warp(START + W);
        vault.finalizeExit(c);
        assertTrue(attacker.attempted(), "re-entry attempted");
        assertTrue(!attacker.reentrySucceeded(), "re-entry failed");
        assertEq(
            keccak256(attacker.reentryError()), keccak256(abi.encodeWithSelector(NoteVault.Reentrancy.selector)), "lock"
        );
        assertEq(address(attacker).balance, 200 * UNIT, "paid once");
        assertEq(address(vault).balance, 800 * UNIT, "rest stays");
    }

    function test_LockStopsReentryIntoAnotherNoteDuringAClose() public {
        ReentrantRecipient attacker = new ReentrantRecipient();
        uint256 ready = depositNote(1, 500);
        initiate(ready, 100, address(attacker));
        vm.warp(START + W);
        uint256 closing = depositNote(2, 500);
        attacker.arm(vault, ready); // a finalize that would succeed on its own
        acceptExit(closing, 1, 300, address(attacker), 7, 8);
        bytes memory sig = clearance(CLEARANCE_KEY, 7);
        vault.closeWithClearance(closing, 1, 300, address(attacker), 7, 8, proof, sig);
        assertEq(
            keccak256(attacker.reentryError()), keccak256(abi.encodeWithSelector(NoteVault.Reentrancy.selector)), "lock"
        );
        assertTrue(status(ready) == NoteVault.Status.Exiting, "not finalized inside the close");
        vault.finalizeExit(ready); // and fine on its own afterwards
        assertEq(address(attacker).balance, 400 * UNIT, "300 + 100");
    }

    function test_ReentrantTreasuryWithdrawsOnce() public {
        ReentrantTreasury greedy = new ReentrantTreasury();
        vm.prank(OPERATOR);
        vault.setTreasury(address(greedy));
        depositNote(1, 500);
        depositNote(2, 500);
        vault.slash(1);
        greedy.withdraw(vault);
        assertEq(address(greedy).balance, 500 * UNIT, "once");
        assertEq(
            keccak256(greedy.reentryError()), keccak256(abi.encodeWithSelector(NoteVault.Reentrancy.selector)), "lock"
        );
    }

    function testFuzz_ExitPayoutSplit(uint64 amount, uint64 payout) public {
        vm.assume(amount >= MIN_DEPOSIT && amount <= 1e15);
        payout = uint64(payout % (uint256(amount) + 1));
        vm.deal(USER, uint256(amount) * UNIT);
        uint256 c = depositNote(9, amount);
        initiate(c, payout, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(c);
        assertEq(RECIPIENT.balance, uint256(payout) * UNIT, "P");
        assertEq(vault.treasuryCredit(), amount - payout, "D - P");
    }
}

contract CloseTest is VaultTestBase {
    event NoteClosed(uint32 noteId, uint256 nullifier, uint256 share, uint64 payout);

    function test_CloseWithClearancePaysAtOnce() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 450, RECIPIENT, 111, 222);
        vm.expectEmit();
        emit NoteClosed(0, 111, 222, 450);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, clearance(CLEARANCE_KEY, 111));
        assertEq(RECIPIENT.balance, 450 * UNIT, "paid");
        assertEq(vault.treasuryCredit(), 50, "credit");
        assertTrue(status(c) == NoteVault.Status.Closed, "closed");
    }

    function test_RevertWhen_ClearanceIsWrong() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 450, RECIPIENT, 111, 222);
        bytes memory wrongSigner = clearance(0xbad, 111);
        bytes memory otherNullifier = clearance(CLEARANCE_KEY, 112);
        vm.expectRevert(NoteVault.InvalidClearance.selector);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, wrongSigner);
        vm.expectRevert(NoteVault.InvalidClearance.selector);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, otherNullifier);
        vm.expectRevert(NoteVault.InvalidClearance.selector);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, hex"1234");
        // A new clearance signer takes over at once.
        vm.prank(OPERATOR);
        vault.setClearanceSigner(vm.addr(0xbad));
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, wrongSigner);
    }

    /// PROTOCOL §8's accepted griefing: a close's calldata is all `initiateExit` needs, so a
    /// front-runner can turn the close into a slow exit. It pays the same recipient the same
    /// payout, only `W` later, and costs the front-runner the exit's gas.
    function test_AFrontRunCloseBecomesASlowExitToTheSameRecipient() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 450, RECIPIENT, 111, 222);
        bytes memory sig = clearance(CLEARANCE_KEY, 111);
        vm.prank(address(0xf00d));
        vault.initiateExit(c, 1, 450, RECIPIENT, 111, 222, proof);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Exiting));
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, sig);
        assertEq(RECIPIENT.balance, 0, "nothing paid yet");
        vm.warp(block.timestamp + W);
        vault.finalizeExit(c);
        assertEq(RECIPIENT.balance, 450 * UNIT, "the same payout to the same recipient");
        assertTrue(status(c) == NoteVault.Status.Closed, "closed");
    }

    uint256 internal constant SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;

    function test_RevertWhen_ClearanceHasHighS() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 450, RECIPIENT, 111, 222);
        // The same signature with s' = n − s and v flipped recovers the same signer: refused.
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(CLEARANCE_KEY, vault.clearanceDigest(111));
        bytes memory flipped = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(NoteVault.InvalidClearance.selector);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, flipped);
        vault.closeWithClearance(c, 1, 450, RECIPIENT, 111, 222, proof, abi.encodePacked(r, s, v));
    }

    function test_RevertWhen_CloseOfANoteNotActiveOrAfterTheDeadline() public {
        uint256 c = depositNote(1, 500);
        initiate(c, 100, RECIPIENT);
        bytes memory sig = clearance(CLEARANCE_KEY, 111);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Exiting));
        vault.closeWithClearance(c, 1, 100, RECIPIENT, 111, 222, proof, sig);

        uint256 late = depositNote(2, 500);
        uint256 deadline = uint256(vault.noteOf(late).expiry) * 3600 + G_EXP;
        acceptExit(late, 1, 100, RECIPIENT, 5, 6);
        vm.warp(deadline);
        sig = clearance(CLEARANCE_KEY, 5);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.ExitDeadlinePassed.selector, deadline));
        vault.closeWithClearance(late, 1, 100, RECIPIENT, 5, 6, proof, sig);
    }

    function test_RevertWhen_CloseProofOrPayoutIsBad() public {
        uint256 c = depositNote(1, 500);
        acceptExit(c, 1, 100, RECIPIENT, 111, 222);
        bytes memory sig = clearance(CLEARANCE_KEY, 111);
        vm.expectRevert(NoteVault.InvalidExitProof.selector);
        vault.closeWithClearance(c, 1, 100, address(0xBAD), 111, 222, proof, sig);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.PayoutExceedsDeposit.selector, 501, 500));
        vault.closeWithClearance(c, 1, 501, RECIPIENT, 111, 222, proof, sig);
    }
}

contract SlashAndExpiryTest is VaultTestBase {
    event NoteSlashed(uint32 noteId);
    event NoteExpired(uint32 noteId);

    function test_SlashWithTheRightKCreditsAllOfD() public {
        uint256 c = depositNote(77, 500);
        vm.expectEmit();
        emit NoteSlashed(0);
        vault.slash(77);
        assertTrue(status(c) == NoteVault.Status.Slashed, "slashed");
        assertEq(vault.treasuryCredit(), 500, "all of D");
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Slashed));
        vault.slash(77);
    }

    function test_RevertWhen_SlashWithTheWrongK() public {
        depositNote(77, 500);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownNote.selector, commitmentOf(78)));
        vault.slash(78);
    }

    function test_SlashDuringTheExitWindowCancelsThePayout() public {
        uint256 c = depositNote(77, 500);
        initiate(c, 400, RECIPIENT);
        vault.slash(77);
        assertEq(vault.exitClaimOf(c).payout, 0, "claim dropped");
        vm.warp(START + W);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Slashed));
        vault.finalizeExit(c);
        assertEq(RECIPIENT.balance, 0, "nothing paid");
        assertEq(vault.treasuryCredit(), 500, "all of D");
    }

    function test_RevertWhen_SlashAfterCloseOrExpiry() public {
        uint256 c = depositNote(1, 500);
        initiate(c, 100, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(c);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Closed));
        vault.slash(1);
        uint256 e = depositNote(2, 500);
        vm.warp(uint256(vault.noteOf(e).expiry) * 3600 + G_EXP);
        vault.claimExpired(e);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Expired));
        vault.slash(2);
    }

    function test_ClaimExpiredTiming() public {
        uint256 c = depositNote(1, 500);
        uint256 at = uint256(vault.noteOf(c).expiry) * 3600 + G_EXP;
        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.NotYetExpired.selector, at));
        vault.claimExpired(c);
        vm.warp(at);
        vm.expectEmit();
        emit NoteExpired(0);
        vault.claimExpired(c);
        assertEq(vault.treasuryCredit(), 500, "credited");
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Expired));
        vault.claimExpired(c);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownNote.selector, commitmentOf(2)));
        vault.claimExpired(commitmentOf(2));
    }

    function test_RevertWhen_ClaimExpiredOnAnExitingNote() public {
        uint256 c = depositNote(1, 500);
        uint256 deadline = uint256(vault.noteOf(c).expiry) * 3600 + G_EXP;
        vm.warp(deadline - 1);
        initiate(c, 100, RECIPIENT);
        vm.warp(deadline + W);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongNoteStatus.selector, NoteVault.Status.Exiting));
        vault.claimExpired(c);
        vault.finalizeExit(c); // an exit started in time is paid after the grace period
        assertEq(RECIPIENT.balance, 100 * UNIT, "paid");
    }

    function test_WithdrawTreasury() public {
        depositNote(1, 500);
        vault.slash(1);
        vm.expectRevert(NoteVault.NotTreasury.selector);
        vault.withdrawTreasury();
        vm.prank(TREASURY);
        vault.withdrawTreasury();
        assertEq(TREASURY.balance, 500 * UNIT, "withdrawn");
        vm.prank(TREASURY);
        vm.expectRevert(NoteVault.NothingToWithdraw.selector);
        vault.withdrawTreasury();
    }
}

contract AdminTest is VaultTestBase {
    event KeyRegistered(uint32 number, uint256 pkX, uint256 pkY, uint64 activation);
    event KeyRevoked(uint32 number, uint32 depositCount);
    event ParameterChanged(bytes32 name, bytes32 value, uint64 effectiveAt);

    function test_RevertWhen_NotOperator() public {
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.registerKey(G2X, G2Y, uint64(block.timestamp + 365 days));
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.revokeKey(1, 0);
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.setPriceListHash(bytes32(uint256(1)));
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.setOhttpKeysHash(bytes32(uint256(1)));
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.setTreasury(address(1));
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.setClearanceSigner(address(1));
        vm.expectRevert(NoteVault.NotOperator.selector);
        vault.setDepositsPaused(true);
    }

    function test_KeyRegistrationRateLimitAndActivationDelay() public {
        uint64 earliest = uint64(START + 30 days + W + G_EXP);
        vm.startPrank(OPERATOR);
        vm.warp(START + 30 days - 1);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.KeyRegistrationTooSoon.selector, START + 30 days));
        vault.registerKey(G2X, G2Y, earliest);
        vm.warp(START + 30 days);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.ActivationTooSoon.selector, earliest - 1, earliest));
        vault.registerKey(G2X, G2Y, earliest - 1);
        vm.expectEmit();
        emit KeyRegistered(2, G2X, G2Y, earliest);
        vault.registerKey(G2X, G2Y, earliest);
        assertEq(vault.keyCount(), 2, "registered");
        // One registration per 30 days.
        vm.warp(START + 60 days - 1);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.KeyRegistrationTooSoon.selector, START + 60 days));
        vault.registerKey(G3X, G3Y, uint64(START + 90 days));
        vm.warp(START + 60 days);
        vault.registerKey(G3X, G3Y, uint64(START + 60 days + W + G_EXP));
        vm.stopPrank();
        // Key 2 became current at its activation.
        vm.warp(earliest - 1);
        assertEq(vault.currentKeyNumber(), 1, "not yet");
        vm.warp(earliest);
        assertEq(vault.currentKeyNumber(), 2, "key 2 current");
    }

    function test_RevertWhen_KeyPointIsInvalid() public {
        vm.warp(START + 30 days);
        uint64 act = uint64(START + 365 days);
        vm.startPrank(OPERATOR);
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        vault.registerKey(1, 2, act); // not on the curve
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        vault.registerKey(0, 1, act); // the identity
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        vault.registerKey(0, P - 1, act); // order 2
        vm.expectRevert(NoteVault.InvalidKeyPoint.selector);
        vault.registerKey(P - GX, P - GY, act); // G + (0, −1): on the curve, outside the subgroup
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, GX + P));
        vault.registerKey(GX + P, GY, act); // coordinate ≥ p
        vm.expectRevert(abi.encodeWithSelector(NoteVault.FieldElementOutOfRange.selector, P));
        vault.registerKey(G2X, P, act);
        vault.registerKey(G3X, G3Y, act);
        vm.stopPrank();
    }

    function test_RevokeRules() public {
        vm.startPrank(OPERATOR);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.UnknownKey.selector, 2));
        vault.revokeKey(2, 0);
        // Revoking the current key needs a registered, unrevoked successor.
        vm.expectRevert(abi.encodeWithSelector(NoteVault.BadSuccessor.selector, 0));
        vault.revokeKey(1, 0);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.BadSuccessor.selector, 2));
        vault.revokeKey(1, 2);
        vm.warp(START + 30 days);
        vault.registerKey(G2X, G2Y, uint64(START + 30 days + W + G_EXP));
        vm.stopPrank();
        depositNote(1, 100);
        vm.startPrank(OPERATOR);
        vm.expectEmit();
        emit KeyRevoked(1, 1);
        vm.expectEmit();
        emit ParameterChanged("currentKey", bytes32(uint256(2)), uint64(block.timestamp));
        vault.revokeKey(1, 2);
        assertEq(vault.currentKeyNumber(), 2, "successor current at once");
        assertEq(vault.stateKey(1).depositCountAtRevocation, 1, "count at announcement");
        vm.expectRevert(abi.encodeWithSelector(NoteVault.KeyAlreadyRevoked.selector, 1));
        vault.revokeKey(1, 2);
        // Revoking a non-current key needs no successor.
        vm.warp(START + 60 days);
        vault.registerKey(G3X, G3Y, uint64(START + 60 days + W + G_EXP));
        vault.revokeKey(3, 0);
        assertEq(vault.currentKeyNumber(), 2, "still 2");
        // The current key cannot name a revoked successor.
        vm.expectRevert(abi.encodeWithSelector(NoteVault.BadSuccessor.selector, 3));
        vault.revokeKey(2, 3);
        vm.stopPrank();
    }

    function test_PriceListHashTakesEffectAfterW() public {
        bytes32 v1 = keccak256("prices v1");
        bytes32 v2 = keccak256("prices v2");
        vm.prank(OPERATOR);
        vm.expectEmit();
        emit ParameterChanged("priceListHash", v2, uint64(START + W));
        vault.setPriceListHash(v2);
        assertEq(vault.priceListHash(), v1, "old value during W");
        (bytes32 pending, uint64 at) = vault.pendingPriceListHash();
        assertEq(pending, v2, "pending");
        assertEq(at, START + W, "effective at");
        vm.warp(START + W - 1);
        assertEq(vault.priceListHash(), v1, "still old");
        vm.warp(START + W);
        assertEq(vault.priceListHash(), v2, "new value");
        (, at) = vault.pendingPriceListHash();
        assertEq(at, 0, "nothing pending");
        // A second change keeps v2 in force until its own delay passes.
        bytes32 v3 = keccak256("prices v3");
        vm.prank(OPERATOR);
        vault.setPriceListHash(v3);
        assertEq(vault.priceListHash(), v2, "v2 until W passes");
        vm.warp(START + 2 * W);
        assertEq(vault.priceListHash(), v3, "v3");
    }

    function test_ImmediateParameters() public {
        vm.startPrank(OPERATOR);
        vm.expectEmit();
        emit ParameterChanged("ohttpKeysHash", keccak256("ohttp v2"), uint64(START));
        vault.setOhttpKeysHash(keccak256("ohttp v2"));
        assertEq(vault.ohttpKeysHash(), keccak256("ohttp v2"), "ohttp");
        vault.setTreasury(address(0x1234));
        assertEq(uint160(vault.treasury()), 0x1234, "treasury");
        vault.setClearanceSigner(address(0x5678));
        assertEq(uint160(vault.clearanceSigner()), 0x5678, "signer");
        vm.expectRevert(NoteVault.ZeroAddress.selector);
        vault.setTreasury(address(0));
        vm.expectRevert(NoteVault.ZeroAddress.selector);
        vault.setClearanceSigner(address(0));
        vm.stopPrank();
    }
}

contract TokenVaultTest is VaultTestBase {
    TestToken internal token;

    function setUp() public override {
        vm.warp(START);
        verifier = new TestOnlyExitVerifier();
        token = new TestToken();
        vault = new NoteVault(deployment(address(token)));
        token.mint(USER, 1e30);
        vm.prank(USER);
        token.approve(address(vault), type(uint256).max);
    }

    function tokenDeposit(uint256 k, uint64 amount) internal returns (uint256 c) {
        c = commitmentOf(k);
        vm.prank(USER);
        vault.deposit(c, amount);
    }

    function test_TokenDepositExitAndWithdraw() public {
        uint256 c = tokenDeposit(1, 500);
        assertEq(token.balanceOf(address(vault)), 500 * UNIT, "pulled");
        initiate(c, 300, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(c);
        assertEq(token.balanceOf(RECIPIENT), 300 * UNIT, "paid");
        vm.prank(TREASURY);
        vault.withdrawTreasury();
        assertEq(token.balanceOf(TREASURY), 200 * UNIT, "treasury");
        assertEq(token.balanceOf(address(vault)), 0, "empty");
    }

    function test_TokenDepositMany() public {
        uint256[] memory cs = new uint256[](2);
        uint64[] memory ds = new uint64[](2);
        cs[0] = commitmentOf(1);
        cs[1] = commitmentOf(2);
        ds[0] = 100;
        ds[1] = 250;
        vm.prank(USER);
        vault.depositMany(cs, ds);
        assertEq(token.balanceOf(address(vault)), 350 * UNIT, "pulled once");
    }

    function test_RevertWhen_TokenDepositCarriesEth() public {
        vm.deal(USER, 1 ether);
        vm.prank(USER);
        vm.expectRevert(abi.encodeWithSelector(NoteVault.WrongPayment.selector, 1, 0));
        vault.deposit{value: 1}(commitmentOf(1), 100);
    }

    function test_RevertWhen_TokenBalanceGrowsByLess() public {
        token.setFeeBps(10);
        vm.prank(USER);
        vm.expectRevert(
            abi.encodeWithSelector(NoteVault.TokenAmountShort.selector, 100 * UNIT * 999 / 1000, 100 * UNIT)
        );
        vault.deposit(commitmentOf(1), 100);
    }

    function test_TokenWithoutReturnValueWorks() public {
        token.setReturnMode(1);
        uint256 c = tokenDeposit(1, 500);
        initiate(c, 500, RECIPIENT);
        vm.warp(START + W);
        vault.finalizeExit(c);
        assertEq(token.balanceOf(RECIPIENT), 500 * UNIT, "paid");
    }

    function test_RevertWhen_TokenReturnsFalse() public {
        uint256 c = tokenDeposit(1, 500);
        initiate(c, 500, RECIPIENT);
        token.setReturnMode(2);
        vm.prank(USER);
        vm.expectRevert(NoteVault.TokenCallFailed.selector);
        vault.deposit(commitmentOf(2), 100);
        vm.warp(START + W);
        vm.expectRevert(NoteVault.TokenCallFailed.selector);
        vault.finalizeExit(c);
    }

    function test_RevertWhen_TransferFromFails() public {
        vm.prank(USER);
        token.approve(address(vault), 0);
        vm.prank(USER);
        vm.expectRevert(NoteVault.TokenCallFailed.selector);
        vault.deposit(commitmentOf(1), 100);
    }
}

/// Gas scenarios. Each test makes the calls of one scenario, so that
/// `forge test --isolate --gas-report --match-test <test>` (every top-level call a transaction
/// of its own, 21,000 and calldata included) reports exactly that scenario's figures.
contract GasTest is VaultTestBase {
    /// Two ETH deposits: the first into a fresh vault and the steady state (the digest's slot
    /// is non-zero from deployment, so both cost the same).
    function test_GasDepositEth() public {
        depositNote(1, 500);
        depositNote(2, 500);
        assertEq(vault.depositCount(), 2, "count");
    }

    /// `initiateExit` with a real Groth16 verification (the generated ExitVerifier on a real
    /// exit proof, behind GasMeasuringExitVerifier: one extra call).
    function test_GasInitiateExitWithARealGroth16Verification() public {
        NoteVault.Deployment memory d = deployment(address(0));
        d.exitVerifier = new GasMeasuringExitVerifier();
        vault = new NoteVault(d);
        uint256 c = depositNote(1, 500);
        vault.initiateExit(c, 1, 400, RECIPIENT, P - 1, P - 2, proof);
        assertTrue(status(c) == NoteVault.Status.Exiting, "exiting");
    }

    /// Two slashes: the first moves the treasury credit from zero (max), the second not (min).
    function test_GasSlash() public {
        depositNote(1, 500);
        depositNote(2, 500);
        vault.slash(1);
        vault.slash(2);
        assertEq(vault.treasuryCredit(), 1000, "credit");
    }

    /// Two ERC-20 deposits: the first also creates the vault's token balance (max).
    function test_GasDepositToken() public {
        TestToken token = new TestToken();
        vault = new NoteVault(deployment(address(token)));
        token.mint(USER, 1e30);
        vm.prank(USER);
        token.approve(address(vault), type(uint256).max);
        vm.prank(USER);
        vault.deposit(commitmentOf(1), 500);
        vm.prank(USER);
        vault.deposit(commitmentOf(2), 500);
        assertEq(token.balanceOf(address(vault)), 1000 * UNIT, "pulled");
    }
}
