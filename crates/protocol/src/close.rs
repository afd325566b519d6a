//! A mutual close (PROTOCOL §8): the client sends its exit statement and proof to
//! `POST /nullgate/close`; the gateway verifies them, reserves `N_n` with `(x_e, y_e)`, and
//! answers with the clearance, an EIP-712 signature by the vault's clearance signer over
//! `Clearance(uint256 nullifier)` that `closeWithClearance` accepts.
//!
//! Both bodies are JSON; field elements and addresses are `0x`-prefixed big-endian hex, the
//! proof is the compressed 128-byte Groth16 encoding in unpadded base64url. The gateway takes
//! `note_id`, `D` and `PK_i` from its own view of the chain (by `C` and the key number),
//! `dom`, `C_max` and `x_e` from the deployment; only what is below comes from the client.

use nullgate_zk::{
    Fr,
    field::{fr_from_bytes, fr_to_bytes},
    groth16::{Proof, proof_from_bytes, proof_to_bytes},
};
use serde::{Deserialize, Serialize};

use crate::{
    WireError, base64url, from_base64url,
    well_known::{from_hex0x, hex0x},
};

/// Where a mutual close is asked for.
pub const CLOSE_PATH: &str = "/nullgate/close";

/// Longest close request body the gateway reads.
pub const MAX_CLOSE_BODY: usize = 4096;

/// The exit statement and its proof, as the client sends them.
#[derive(Clone, PartialEq, Debug)]
pub struct CloseRequest {
    /// The note's commitment `C`.
    pub commitment: Fr,
    /// The state key's absolute number.
    pub key_number: u32,
    /// The payout `P`, credit units.
    pub payout: u64,
    /// Who is paid.
    pub recipient: [u8; 20],
    /// `N_n`.
    pub nullifier: Fr,
    /// `y_e`.
    pub exit_y: Fr,
    /// The exit proof.
    pub proof: Proof,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseJson {
    commitment: String,
    key_number: u32,
    payout: u64,
    recipient: String,
    nullifier: String,
    exit_y: String,
    proof: String,
}

const WHAT: &str = "close request";

impl CloseRequest {
    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&CloseJson {
            commitment: hex0x(&fr_to_bytes(&self.commitment)),
            key_number: self.key_number,
            payout: self.payout,
            recipient: hex0x(&self.recipient),
            nullifier: hex0x(&fr_to_bytes(&self.nullifier)),
            exit_y: hex0x(&fr_to_bytes(&self.exit_y)),
            proof: base64url(&proof_to_bytes(&self.proof)),
        })
        .expect("a close request serialises")
    }

    /// Parses and checks a body: every field element below `p`, the proof's points on their
    /// curves and in their subgroups.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_CLOSE_BODY {
            return Err(WireError::Length {
                what: WHAT,
                expected: MAX_CLOSE_BODY,
                got: bytes.len(),
            });
        }
        let json: CloseJson = serde_json::from_slice(bytes)
            .map_err(|e| WireError::syntax(WHAT, format!("not the close JSON: {e}")))?;
        let field = |text: &str, what: &'static str| -> Result<Fr, WireError> {
            let bytes = from_hex0x::<32>(text, what)?;
            fr_from_bytes(&bytes, what).map_err(|_| WireError::syntax(what, "not below p"))
        };
        let proof = from_base64url(&json.proof, "exit proof")?;
        Ok(Self {
            commitment: field(&json.commitment, "commitment")?,
            key_number: json.key_number,
            payout: json.payout,
            recipient: from_hex0x::<20>(&json.recipient, "recipient")?,
            nullifier: field(&json.nullifier, "nullifier")?,
            exit_y: field(&json.exit_y, "exit_y")?,
            proof: proof_from_bytes(&proof)
                .map_err(|_| WireError::syntax("exit proof", "not a valid compressed proof"))?,
        })
    }
}

/// The gateway's answer: the 65-byte clearance signature `r ‖ s ‖ v`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Clearance(pub [u8; 65]);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearanceJson {
    clearance: String,
}

impl Clearance {
    /// The JSON body `{"clearance": "0x…"}`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ClearanceJson {
            clearance: hex0x(&self.0),
        })
        .expect("a clearance serialises")
    }

    /// Parses the JSON body.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let json: ClearanceJson = serde_json::from_slice(bytes)
            .map_err(|e| WireError::syntax("clearance", format!("not the clearance JSON: {e}")))?;
        Ok(Self(from_hex0x::<65>(&json.clearance, "clearance")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CloseRequest {
        CloseRequest {
            commitment: Fr::from(11u64),
            key_number: 1,
            payout: 2_500,
            recipient: [0xab; 20],
            nullifier: Fr::from(12u64),
            exit_y: Fr::from(13u64),
            proof: {
                use ark_ec::{AffineRepr, CurveGroup};
                let g1 = ark_bn254::G1Affine::generator();
                let g2 = ark_bn254::G2Affine::generator();
                Proof {
                    a: (g1 * ark_bn254::Fr::from(3u64)).into_affine(),
                    b: (g2 * ark_bn254::Fr::from(5u64)).into_affine(),
                    c: (g1 * ark_bn254::Fr::from(7u64)).into_affine(),
                }
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_each_broken_field() {
        let request = sample();
        let body = request.to_json();
        assert_eq!(CloseRequest::parse(&body).unwrap(), request);
        let text = String::from_utf8(body).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let broken = |field: &str, to: serde_json::Value| {
            let mut v = value.clone();
            v[field] = to;
            CloseRequest::parse(v.to_string().as_bytes())
        };
        let above_p = format!("0x{}", "ff".repeat(32));
        assert!(broken("commitment", above_p.into()).is_err());
        assert!(broken("nullifier", "0x12".into()).is_err());
        assert!(broken("exit_y", "12".into()).is_err());
        assert!(broken("recipient", "0xabab".into()).is_err());
        assert!(broken("proof", "AAAA".into()).is_err());
        assert!(broken("payout", (-1).into()).is_err());
        assert!(CloseRequest::parse(&vec![b' '; MAX_CLOSE_BODY + 1]).is_err());
        let mut extra = value.clone();
        extra["bogus"] = 1.into();
        assert!(CloseRequest::parse(extra.to_string().as_bytes()).is_err());

        let clearance = Clearance([7; 65]);
        assert_eq!(Clearance::parse(&clearance.to_json()).unwrap(), clearance);
        assert!(Clearance::parse(br#"{"clearance":"0x07"}"#).is_err());
    }
}
