// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {ExitVerifier} from "../src/generated/ExitVerifier.sol";
import {ExitProof} from "./generated/ExitProof.sol";

/// The generated exit verifier (DEV key) on a real proof by nullgate-zk: accepted as made,
/// rejected once the proof, the recipient or the payout changes.
contract ExitVerifierTest {
    /// BN254's scalar field modulus `r`: public inputs must be below it.
    uint256 constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// BN254's base field modulus `q`: proof coordinates must be below it.
    uint256 constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;

    ExitVerifier verifier = new ExitVerifier();

    /// Whether the verifier accepts `proof` for `inputs`, and the revert data if not.
    function check(uint256[8] memory proof, uint256[12] memory inputs) internal view returns (bool, bytes memory) {
        // A bounded gas budget: a precompile refusing its input burns all the gas it is
        // given, and a valid proof needs well under this.
        try verifier.verifyProof{gas: 3_000_000}(proof, inputs) {
            return (true, "");
        } catch (bytes memory err) {
            return (false, err);
        }
    }

    function expectRejected(uint256[8] memory proof, uint256[12] memory inputs, bytes4 expected, string memory what)
        internal
        view
    {
        (bool ok, bytes memory err) = check(proof, inputs);
        if (ok) revert(string.concat(what, ": accepted"));
        if (bytes4(err) != expected) revert(string.concat(what, ": wrong error"));
    }

    function test_AcceptsTheRealProof() public view {
        (bool ok,) = check(ExitProof.proof(), ExitProof.inputs());
        if (!ok) revert("the real exit proof was rejected");
    }

    function test_AcceptsTheCompressedProof() public view {
        uint256[4] memory compressed = verifier.compressProof(ExitProof.proof());
        verifier.verifyCompressedProof(compressed, ExitProof.inputs());
    }

    /// `-A` is a valid curve point, so the pairing check itself fails.
    function test_RejectsATamperedProof() public view {
        uint256[8] memory proof = ExitProof.proof();
        proof[1] = Q - proof[1];
        expectRejected(proof, ExitProof.inputs(), ExitVerifier.ProofInvalid.selector, "negated A");
        proof = ExitProof.proof();
        proof[6] += 1; // C off the curve
        expectRejected(proof, ExitProof.inputs(), ExitVerifier.ProofInvalid.selector, "C off the curve");
    }

    /// The same proof replayed for another recipient.
    function test_RejectsAnotherRecipient() public view {
        uint256[12] memory inputs = ExitProof.inputs();
        inputs[ExitProof.RECIPIENT] ^= 1;
        expectRejected(ExitProof.proof(), inputs, ExitVerifier.ProofInvalid.selector, "recipient");
    }

    function test_RejectsAnotherPayout() public view {
        uint256[12] memory inputs = ExitProof.inputs();
        inputs[ExitProof.PAYOUT] += 1;
        expectRejected(ExitProof.proof(), inputs, ExitVerifier.ProofInvalid.selector, "payout");
    }

    /// Every public input at exactly `r` and at its own value plus `r` (the same residue, so
    /// only the range check can refuse it).
    function test_RejectsEveryInputNotInTheField() public view {
        for (uint256 i = 0; i < 12; i++) {
            uint256[12] memory inputs = ExitProof.inputs();
            inputs[i] = R;
            expectRejected(ExitProof.proof(), inputs, ExitVerifier.PublicInputNotInField.selector, "r");
            inputs = ExitProof.inputs();
            inputs[i] += R;
            expectRejected(ExitProof.proof(), inputs, ExitVerifier.PublicInputNotInField.selector, "x + r");
        }
    }

    /// `r - 1` is in the field: refused by the pairing, not by the range check.
    function test_TheLargestInputIsRangeChecked() public view {
        uint256[12] memory inputs = ExitProof.inputs();
        inputs[0] = R - 1;
        expectRejected(ExitProof.proof(), inputs, ExitVerifier.ProofInvalid.selector, "r - 1");
    }

    /// Every proof coordinate at exactly `q` and at its own value plus `q`.
    function test_RejectsEveryProofCoordinateNotInTheBaseField() public view {
        for (uint256 j = 0; j < 8; j++) {
            uint256[8] memory proof = ExitProof.proof();
            proof[j] = Q;
            expectRejected(proof, ExitProof.inputs(), ExitVerifier.ProofInvalid.selector, "q");
            proof = ExitProof.proof();
            proof[j] += Q;
            expectRejected(proof, ExitProof.inputs(), ExitVerifier.ProofInvalid.selector, "x + q");
        }
    }
}
