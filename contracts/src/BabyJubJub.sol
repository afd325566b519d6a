// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

/// @title Point checks on Baby-JubJub in EIP-2494 coordinates (PROTOCOL §1).
/// @notice `168700·x² + y² = 1 + 168696·x²·y²` over BN254's scalar field.
library BabyJubJub {
    /// BN254's scalar field modulus `p`.
    uint256 internal constant P = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    /// The order `l` of the prime-order subgroup.
    uint256 internal constant L = 2736030358979909402780800718157159386076813972158567259200215660948447373041;
    uint256 internal constant A = 168700;
    uint256 internal constant D = 168696;

    /// @notice True when `(x, y)` has coordinates `< p`, is on the curve, is not the identity
    /// `(0, 1)` and lies in the prime-order subgroup (`l·(x, y)` is the identity).
    /// @dev The subgroup check is a full 252-bit scalar multiplication (`registerKey` costs
    /// about 0.3 M gas in all): key registration is rare, and a point outside the subgroup
    /// must never be accepted.
    function isValidSubgroupPoint(uint256 x, uint256 y) internal pure returns (bool) {
        if (x >= P || y >= P) return false;
        if (x == 0 && y == 1) return false;
        if (!isOnCurve(x, y)) return false;
        (uint256 rx, uint256 ry, uint256 rz) = mulL(x, y);
        // The identity in projective coordinates: X = 0, Y = Z (Z is never 0: complete formulas).
        return rx == 0 && ry == rz;
    }

    /// @notice True when the reduced point `(x, y)` satisfies the curve equation.
    function isOnCurve(uint256 x, uint256 y) internal pure returns (bool) {
        uint256 x2 = mulmod(x, x, P);
        uint256 y2 = mulmod(y, y, P);
        uint256 lhs = addmod(mulmod(A, x2, P), y2, P);
        uint256 rhs = addmod(1, mulmod(D, mulmod(x2, y2, P), P), P);
        return lhs == rhs;
    }

    /// `l·(x, y)` in projective coordinates, by double-and-add from the top bit, with the
    /// complete twisted Edwards addition (add-2008-bbjlp; `a` is a square and `d` is not, so
    /// the formula holds for every pair of curve points, doubling included). In assembly: the
    /// Solidity version cost about three times as much.
    function mulL(uint256 x, uint256 y) private pure returns (uint256 X, uint256 Y, uint256 Z) {
        assembly ("memory-safe") {
            // (x1 : y1 : z1) + (x2 : y2 : z2). The arguments are reused as temporaries to stay
            // within 16 stack slots.
            function edAdd(x1, y1, z1, x2, y2, z2) -> x3, y3, z3 {
                let q := 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001
                let h := mulmod(addmod(x1, y1, q), addmod(x2, y2, q), q)
                x1 := mulmod(x1, x2, q) // C = X1·X2
                y1 := mulmod(y1, y2, q) // D = Y1·Y2
                z1 := mulmod(z1, z2, q) // A = Z1·Z2
                x2 := mulmod(z1, z1, q) // B = A²
                y2 := mulmod(168696, mulmod(x1, y1, q), q) // E = d·C·D
                z2 := addmod(x2, sub(q, y2), q) // F = B − E
                x2 := addmod(x2, y2, q) // G = B + E
                x3 := mulmod(mulmod(z1, z2, q), addmod(h, sub(q, addmod(x1, y1, q)), q), q)
                y3 := mulmod(mulmod(z1, x2, q), addmod(y1, sub(q, mulmod(168700, x1, q)), q), q)
                z3 := mulmod(z2, x2, q)
            }
            let l := 2736030358979909402780800718157159386076813972158567259200215660948447373041
            X := 0
            Y := 1
            Z := 1
            for { let i := 252 } gt(i, 0) { i := sub(i, 1) } {
                X, Y, Z := edAdd(X, Y, Z, X, Y, Z)
                if and(shr(sub(i, 1), l), 1) { X, Y, Z := edAdd(X, Y, Z, x, y, 1) }
            }
        }
    }
}
