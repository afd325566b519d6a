// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {NoteVault} from "../src/NoteVault.sol";
import {IExitVerifier} from "../src/IExitVerifier.sol";
import {ExitVerifier} from "../src/generated/ExitVerifier.sol";
import {ExitProof} from "./generated/ExitProof.sol";

/// The Foundry cheatcodes these tests use, declared inline (no forge-std download).
interface Vm {
    function warp(uint256) external;
    function deal(address, uint256) external;
    function prank(address) external;
    function startPrank(address) external;
    function stopPrank() external;
    function expectRevert(bytes calldata) external;
    function expectRevert(bytes4) external;
    function chainId(uint256) external;
    function store(address, bytes32, bytes32) external;
    function load(address, bytes32) external view returns (bytes32);
    function sign(uint256, bytes32) external pure returns (uint8, bytes32, bytes32);
    function addr(uint256) external pure returns (address);
    function expectEmit() external;
    function assume(bool) external pure;
}

/// A plain ERC-20 for the token path (18 decimals, mintable by anyone: tests only).
contract TestToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;
    /// Basis points kept back on every transfer (a fee-on-transfer token when non-zero).
    uint256 public feeBps;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// 0: returns true; 1: returns no data (USDT style); 2: returns false without moving funds.
    uint256 public returnMode;

    function setFeeBps(uint256 bps) external {
        feeBps = bps;
    }

    function setReturnMode(uint256 mode) external {
        returnMode = mode;
    }

    function mint(address to, uint256 value) external {
        balanceOf[to] += value;
        totalSupply += value;
        emit Transfer(address(0), to, value);
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        if (returnMode == 2) return false;
        _move(msg.sender, to, value);
        _returnNothingIfAsked();
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance");
        if (returnMode == 2) return false;
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        _returnNothingIfAsked();
        return true;
    }

    function _returnNothingIfAsked() internal view {
        if (returnMode == 1) {
            assembly {
                return(0, 0)
            }
        }
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "balance");
        uint256 fee = value * feeBps / 10_000;
        balanceOf[from] -= value;
        balanceOf[to] += value - fee;
        totalSupply -= fee;
        emit Transfer(from, to, value - fee);
    }
}

/// TEST ONLY, NOT A VERIFIER: accepts exactly the (proof, inputs) pairs a test registered.
/// It lets the tests exercise the vault's own checks around the proof (state machine,
/// deadlines, P ≤ D, which public inputs the vault assembles, recipient routing). Real-proof
/// tests need the exit circuit's verifying key from nullgate-zk.
contract TestOnlyExitVerifier is IExitVerifier {
    error NotRegistered();

    mapping(bytes32 => bool) public accepted;

    function accept(uint256[8] calldata proof, uint256[12] calldata input) external {
        accepted[keccak256(abi.encode(proof, input))] = true;
    }

    function verifyProof(uint256[8] calldata proof, uint256[12] calldata input) external view {
        if (!accepted[keccak256(abi.encode(proof, input))]) revert NotRegistered();
    }
}

/// TEST ONLY, for gas measurement: on every call it runs the generated ExitVerifier on the real
/// exit proof of the fixture, whatever it is given, so `initiateExit` pays what the real exit
/// verifier costs, plus one extra call.
contract GasMeasuringExitVerifier is IExitVerifier {
    ExitVerifier public immutable inner = new ExitVerifier();

    function verifyProof(uint256[8] calldata, uint256[12] calldata) external view {
        inner.verifyProof(ExitProof.proof(), ExitProof.inputs());
    }
}

/// A treasury that refuses every payment.
contract RevertingTreasury {
    receive() external payable {
        revert("no");
    }

    function withdraw(NoteVault vault) external {
        vault.withdrawTreasury();
    }
}

/// A treasury that tries to withdraw twice while being paid.
contract ReentrantTreasury {
    NoteVault public vault;
    bytes public reentryError;

    function withdraw(NoteVault v) external {
        vault = v;
        v.withdrawTreasury();
    }

    receive() external payable {
        try vault.withdrawTreasury() {}
        catch (bytes memory err) {
            reentryError = err;
        }
    }
}

/// A recipient that tries to re-enter the vault while being paid.
contract ReentrantRecipient {
    NoteVault public vault;
    uint256 public commitment;
    bool public attempted;
    bool public reentrySucceeded;
    bytes public reentryError;

    function arm(NoteVault v, uint256 c) external {
        vault = v;
        commitment = c;
    }

    receive() external payable {
        if (attempted) return;
        attempted = true;
        try vault.finalizeExit(commitment) {
            reentrySucceeded = true;
        } catch (bytes memory err) {
            reentryError = err;
        }
    }
}
