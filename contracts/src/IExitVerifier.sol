// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

/// @title The exit circuit's Groth16 verifier, as the vault calls it (PROTOCOL §8).
/// @notice Implemented by the verifier that `nullgate-solgen verifier` renders from the pinned
/// exit verifying key (gnark's template via taceo-groth16-sol).
interface IExitVerifier {
    /// @notice Returns if `proof` is valid for `input`, reverts otherwise.
    /// @param proof The proof uncompressed (256 bytes): A.x, A.y, B.x1, B.x0, B.y1, B.y0, C.x, C.y.
    /// @param input The 12 public inputs, each `< p`, in the exit circuit's order:
    /// dom, note_id, C, D, PK.x, PK.y, C_max, P, recipient, N_n, x_e, y_e.
    function verifyProof(uint256[8] calldata proof, uint256[12] calldata input) external view;
}
