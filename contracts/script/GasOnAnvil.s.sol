// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {NoteVault} from "../src/NoteVault.sol";
import {PoseidonT3} from "../src/generated/Poseidon.sol";
import {TestToken, GasMeasuringExitVerifier} from "../test/Support.sol";

interface VmScript {
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
    function addr(uint256) external pure returns (address);
}

/// Sends the gas scenarios as real transactions to a node (anvil), so that the receipts'
/// `gasUsed` cross-checks `forge test --isolate --gas-report`. Used by tools/gas-on-anvil.sh;
/// the exit verification is GasMeasuringExitVerifier (test-only: a real 12-input Groth16
/// verification on a fixture proof, whatever the inputs).
contract GasOnAnvil {
    VmScript internal constant vm = VmScript(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;

    function run() external {
        uint256 key = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80; // anvil account 0
        address me = vm.addr(key);
        vm.startBroadcast(key);
        GasMeasuringExitVerifier verifier = new GasMeasuringExitVerifier();
        NoteVault eth = new NoteVault(deployment(address(verifier), address(0), me));
        eth.deposit{value: 500e12}(PoseidonT3.hash(2, 1), 500); // first note
        eth.deposit{value: 500e12}(PoseidonT3.hash(2, 2), 500); // steady state
        eth.deposit{value: 500e12}(PoseidonT3.hash(2, 3), 500);
        uint256[8] memory proof;
        eth.initiateExit(PoseidonT3.hash(2, 3), 1, 400, me, P - 1, P - 2, proof);
        eth.slash(1); // treasury credit from zero
        eth.slash(2); // treasury credit non-zero
        TestToken token = new TestToken();
        NoteVault erc20 = new NoteVault(deployment(address(verifier), address(token), me));
        token.mint(me, 1e30);
        token.approve(address(erc20), type(uint256).max);
        erc20.deposit(PoseidonT3.hash(2, 1), 500); // first note
        erc20.deposit(PoseidonT3.hash(2, 2), 500); // steady state
        vm.stopBroadcast();
    }

    function deployment(address verifier, address asset, address me)
        internal
        pure
        returns (NoteVault.Deployment memory d)
    {
        uint64[] memory classes = new uint64[](3);
        classes[0] = 10;
        classes[1] = 100;
        classes[2] = 1000;
        d.exitVerifier = GasMeasuringExitVerifier(verifier);
        d.asset = asset;
        d.unitSize = 1e12;
        d.minDeposit = 100;
        d.costClasses = classes;
        d.floorFee = 1;
        d.exitWindow = 72 hours;
        d.expiryGrace = 14 days;
        d.noteLifetime = 90 days;
        d.requestProvingKeyHash = keccak256("request pk");
        d.exitProvingKeyHash = keccak256("exit pk");
        d.requestVerifyingKeyHash = keccak256("request vk");
        d.exitVerifyingKeyHash = keccak256("exit vk");
        d.devKeys = true;
        d.stateKeyX = 0x0bb77a6ad63e739b4eacb2e09d6277c12ab8d8010534e0b62893f3f6bb957051;
        d.stateKeyY = 0x25797203f7a0b24925572e1cd16bf9edfce0051fb9e133774b3c257a872d7d8b;
        d.operator = me;
        d.treasury = me;
        d.clearanceSigner = me;
        d.priceListHash = keccak256("prices v1");
        d.ohttpKeysHash = keccak256("ohttp v1");
    }
}
