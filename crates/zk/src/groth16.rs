//! Groth16 over BN254: deterministic DEV setup, proving with cached constraint matrices,
//! verification, batch verification with bisection, and key files (PROTOCOL §1, §11).
//!
//! Keys travel as files with a short header: an ASCII line naming the format version, the
//! circuit, and `DEV` for keys from a local setup, then the circuit hash (SHA-256 of its
//! constraint matrices) and the key hash of PROTOCOL §11 (SHA-256 of the arkworks compressed
//! serialisation, no header), then that serialisation. A key is loaded with full subgroup
//! checks unless its hash equals a pinned hash the caller holds, in which case the fast
//! unchecked path is safe. Proofs are always deserialised with checks.

use ark_bn254::{Bn254, G1Affine, G1Projective, G2Affine};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM, pairing::Pairing};
use ark_ff::{One, PrimeField, UniformRand};
use ark_groth16::{Groth16, PreparedVerifyingKey, ProvingKey, VerifyingKey};
use ark_relations::{
    gr1cs::{
        ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, R1CS_PREDICATE_LABEL,
        SynthesisMode,
    },
    utils::matrix::Matrix,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::{Error, Fr, fixed_base::FixedBase};

/// A Groth16 proof over BN254.
pub type Proof = ark_groth16::Proof<Bn254>;

/// A proof's compressed size on the wire.
pub const PROOF_LEN: usize = 128;

/// Which circuit a key belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CircuitKind {
    /// The request circuit (PROTOCOL §7).
    Request,
    /// The exit circuit (PROTOCOL §8).
    Exit,
    /// The depth-20 RLN benchmark reference.
    RlnReference,
}

impl CircuitKind {
    /// The name used in key file headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Exit => "exit",
            Self::RlnReference => "rln-reference",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Request, Self::Exit, Self::RlnReference]
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// The constraint matrices of a circuit, computed once and reused by every proof.
#[derive(Clone)]
pub struct ConstraintMatrices {
    matrices: Vec<Matrix<Fr>>,
    num_instance_variables: usize,
    num_constraints: usize,
}

impl ConstraintMatrices {
    /// Synthesises `circuit` in setup mode and keeps its matrices.
    pub fn of<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<Self, Error> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        circuit
            .generate_constraints(cs.clone())
            .map_err(synthesis)?;
        cs.finalize();
        let mut all = cs.to_matrices().map_err(synthesis)?;
        let matrices = all
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or_else(|| Error::Synthesis("no R1CS matrices".into()))?;
        Ok(Self {
            matrices,
            num_instance_variables: cs.num_instance_variables(),
            num_constraints: cs.num_constraints(),
        })
    }

    /// The number of constraints.
    pub fn num_constraints(&self) -> usize {
        self.num_constraints
    }

    /// The number of non-zero entries of the three matrices.
    pub fn num_non_zeros(&self) -> usize {
        self.matrices.iter().flatten().map(Vec::len).sum()
    }

    /// The number of public inputs plus one (the constant).
    pub fn num_instance_variables(&self) -> usize {
        self.num_instance_variables
    }

    /// SHA-256 over the matrices: identifies the circuit's shape.
    pub fn circuit_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update((self.num_instance_variables as u64).to_be_bytes());
        hasher.update((self.num_constraints as u64).to_be_bytes());
        for matrix in &self.matrices {
            for row in matrix {
                hasher.update((row.len() as u64).to_be_bytes());
                for (coefficient, column) in row {
                    hasher.update((*column as u64).to_be_bytes());
                    hasher.update(crate::field::fr_to_bytes(coefficient));
                }
            }
        }
        hasher.finalize().into()
    }

    /// Whether the assignment `z = (1, instance…, witness…)` satisfies every row.
    fn is_satisfied_by(&self, assignment: &[Fr]) -> bool {
        let row = |m: &Matrix<Fr>, i: usize| -> Fr {
            m[i].iter()
                .map(|(coefficient, column)| *coefficient * assignment[*column])
                .sum()
        };
        let [a, b, c] = [&self.matrices[0], &self.matrices[1], &self.matrices[2]];
        (0..self.num_constraints).all(|i| row(a, i) * row(b, i) == row(c, i))
    }
}

/// Everything a prover needs: the proving key and the circuit's matrices.
pub struct ProverKey {
    kind: CircuitKind,
    key: ProvingKey<Bn254>,
    matrices: ConstraintMatrices,
}

/// Everything a verifier needs, prepared for fast pairing checks.
#[derive(Clone)]
pub struct VerifierKey {
    kind: CircuitKind,
    prepared: PreparedVerifyingKey<Bn254>,
    beta_g2: <Bn254 as Pairing>::G2Prepared,
    inputs: std::sync::Arc<InputTables>,
}

/// Fixed-base tables for the verifying key's input points `IC_1 … IC_n`: `x·IC_j` becomes
/// 32 table additions instead of a 254-bit scalar multiplication.
struct InputTables {
    tables: Vec<FixedBase<G1Projective>>,
}

impl InputTables {
    fn new(points: &[G1Affine]) -> Self {
        let tables = points
            .par_iter()
            .map(|point| FixedBase::new(point.into_group()))
            .collect();
        Self { tables }
    }

    /// `Σ_j scalars[j]·IC_(j+1)`.
    fn combine(&self, scalars: &[Fr]) -> G1Projective {
        self.tables
            .iter()
            .zip(scalars)
            .map(|(table, scalar)| table.mul(scalar))
            .sum()
    }
}

impl ProverKey {
    /// A deterministic local setup from `seed`: **DEV only**, its toxic waste is derivable
    /// by anyone who knows the seed. `sample` is any instance of the circuit (its values are
    /// not used).
    pub fn dev_setup<C: ConstraintSynthesizer<Fr> + Clone>(
        kind: CircuitKind,
        sample: C,
        seed: [u8; 32],
    ) -> Result<Self, Error> {
        let matrices = ConstraintMatrices::of(sample.clone())?;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        let key = Groth16::<Bn254>::generate_random_parameters_with_reduction(sample, &mut rng)
            .map_err(synthesis)?;
        Ok(Self {
            kind,
            key,
            matrices,
        })
    }

    /// The circuit this key proves.
    pub fn kind(&self) -> CircuitKind {
        self.kind
    }

    /// The circuit's matrices.
    pub fn matrices(&self) -> &ConstraintMatrices {
        &self.matrices
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(self.kind, self.key.vk.clone())
    }

    /// The raw verifying key (for the Solidity verifier generator).
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.key.vk
    }

    /// Proves `circuit` with the cached matrices: only the witness is synthesised.
    /// Refuses (with [`Error::Unsatisfied`]) a witness that does not satisfy the circuit.
    pub fn prove<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Proof, Error> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Prove {
            construct_matrices: false,
            generate_lc_assignments: false,
        });
        circuit
            .generate_constraints(cs.clone())
            .map_err(synthesis)?;
        cs.finalize();
        let mut assignment = cs.instance_assignment().map_err(synthesis)?;
        assignment.extend(cs.witness_assignment().map_err(synthesis)?);
        if !self.matrices.is_satisfied_by(&assignment) {
            return Err(Error::Unsatisfied(self.kind.name()));
        }
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
            &self.key,
            r,
            s,
            &self.matrices.matrices,
            self.matrices.num_instance_variables,
            self.matrices.num_constraints,
            &assignment,
        )
        .map_err(synthesis)
    }

    /// Proves `circuit` with a full synthesis (matrices rebuilt): the uncached reference.
    pub fn prove_uncached<C: ConstraintSynthesizer<Fr>>(
        &self,
        circuit: C,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Proof, Error> {
        Groth16::<Bn254>::create_random_proof_with_reduction(circuit, &self.key, rng)
            .map_err(synthesis)
    }

    /// Size of the proving key in arkworks compressed serialisation.
    pub fn compressed_size(&self) -> usize {
        self.key.compressed_size()
    }

    /// The key file: header, circuit hash, key hash, compressed key.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.key
            .serialize_compressed(&mut body)
            .expect("serialising to memory cannot fail");
        file_bytes("proving", self.kind, &self.matrices.circuit_hash(), &body)
    }

    /// Reads a key file for `sample`'s circuit. With `pinned_hash` equal to the file's key
    /// hash the key is loaded without subgroup checks (fast); otherwise it is fully checked.
    pub fn from_file_bytes<C: ConstraintSynthesizer<Fr>>(
        bytes: &[u8],
        sample: C,
        pinned_hash: Option<&[u8; 32]>,
    ) -> Result<Self, Error> {
        let matrices = ConstraintMatrices::of(sample)?;
        let (kind, body) = parse_file(bytes, "proving", &matrices.circuit_hash(), pinned_hash)?;
        let key = if pinned_hash.is_some() {
            ProvingKey::deserialize_compressed_unchecked(body)
        } else {
            ProvingKey::deserialize_compressed(body)
        }
        .map_err(|e| encoding("proving key", e))?;
        Ok(Self {
            kind,
            key,
            matrices,
        })
    }
}

impl VerifierKey {
    fn new(kind: CircuitKind, vk: VerifyingKey<Bn254>) -> Self {
        let beta_g2 = vk.beta_g2.into();
        let inputs = std::sync::Arc::new(InputTables::new(&vk.gamma_abc_g1[1..]));
        Self {
            kind,
            prepared: ark_groth16::prepare_verifying_key(&vk),
            beta_g2,
            inputs,
        }
    }

    /// `IC(x) = IC_0 + Σ x_j·IC_j`, the public inputs folded into one point.
    fn fold_inputs(&self, public_inputs: &[Fr]) -> G1Projective {
        self.prepared.vk.gamma_abc_g1[0] + self.inputs.combine(public_inputs)
    }

    /// The circuit this key verifies.
    pub fn kind(&self) -> CircuitKind {
        self.kind
    }

    /// The raw verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.prepared.vk
    }

    /// A fresh proof of the same statement, indistinguishable from a new one.
    pub fn rerandomize(&self, proof: &Proof, rng: &mut (impl RngCore + CryptoRng)) -> Proof {
        Groth16::<Bn254>::rerandomize_proof(&self.prepared.vk, proof, rng)
    }

    /// The key hash of PROTOCOL §11 (SHA-256 of the compressed serialisation).
    pub fn key_hash(&self) -> [u8; 32] {
        key_hash(&self.prepared.vk)
    }

    /// Verifies one proof against its public inputs.
    pub fn verify(&self, public_inputs: &[Fr], proof: &Proof) -> Result<(), Error> {
        if public_inputs.len() + 1 != self.prepared.vk.gamma_abc_g1.len() {
            return Err(Error::BadProof);
        }
        let folded = self.fold_inputs(public_inputs);
        match Groth16::<Bn254>::verify_proof_with_prepared_inputs(&self.prepared, proof, &folded) {
            Ok(true) => Ok(()),
            _ => Err(Error::BadProof),
        }
    }

    /// Verifies many proofs with one final exponentiation (a random linear combination with
    /// 128-bit coefficients). On failure, bisects and returns the indices of the bad proofs.
    pub fn verify_batch(
        &self,
        batch: &[(&[Fr], &Proof)],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), Vec<usize>> {
        if self.batch_holds(batch, rng) {
            return Ok(());
        }
        if batch.len() == 1 {
            return Err(vec![0]);
        }
        let (left, right) = batch.split_at(batch.len() / 2);
        let mut bad = Vec::new();
        if let Err(indices) = self.verify_batch(left, rng) {
            bad.extend(indices);
        }
        if let Err(indices) = self.verify_batch(right, rng) {
            bad.extend(indices.into_iter().map(|i| i + left.len()));
        }
        Err(bad)
    }

    /// Whether every proof of `batch` holds, in one check with one final exponentiation:
    /// `Π e(r_i·A_i, B_i) · e(−Σr_i·IC_i, γ) · e(−Σr_i·C_i, δ) · e(−(Σr_i)·α, β) == 1`
    /// with random 128-bit `r_i`. `false` says only that some proof fails, not which.
    pub fn batch_holds(
        &self,
        batch: &[(&[Fr], &Proof)],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> bool {
        let vk = &self.prepared.vk;
        if batch.is_empty() {
            return true;
        }
        if batch
            .iter()
            .any(|(inputs, _)| inputs.len() + 1 != vk.gamma_abc_g1.len())
        {
            return false;
        }
        let coefficients: Vec<Fr> = (0..batch.len())
            .map(|_| Fr::from(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())))
            .collect();
        let total: Fr = coefficients.iter().sum();
        // Σ r_i·IC(x_i) = (Σ r_i)·ic_0 + Σ_j (Σ_i r_i·x_ij)·ic_j.
        let mut input_scalars = Vec::with_capacity(vk.gamma_abc_g1.len() - 1);
        for j in 0..vk.gamma_abc_g1.len() - 1 {
            input_scalars.push(
                batch
                    .iter()
                    .zip(&coefficients)
                    .map(|((inputs, _), r)| inputs[j] * r)
                    .sum(),
            );
        }
        let inputs_sum = vk.gamma_abc_g1[0] * total + self.inputs.combine(&input_scalars);
        let c_points: Vec<G1Affine> = batch.iter().map(|(_, proof)| proof.c).collect();
        let c_sum = G1Projective::msm(&c_points, &coefficients).expect("same length");
        let alpha_sum = vk.alpha_g1 * total;
        // The per-proof work (r_i·A_i and preparing B_i) is independent: spread it over cores.
        let scaled: Vec<G1Projective> = batch
            .par_iter()
            .zip(&coefficients)
            .map(|((_, proof), r)| proof.a * r)
            .collect();
        let mut g1 = G1Projective::normalize_batch(&scaled);
        g1.push(inputs_sum.into_affine());
        g1.push(c_sum.into_affine());
        g1.push((-alpha_sum).into_affine());
        let mut g2: Vec<<Bn254 as Pairing>::G2Prepared> =
            batch.par_iter().map(|(_, proof)| proof.b.into()).collect();
        g2.push(self.prepared.gamma_g2_neg_pc.clone());
        g2.push(self.prepared.delta_g2_neg_pc.clone());
        g2.push(self.beta_g2.clone());
        let result = Bn254::multi_miller_loop(g1, g2);
        Bn254::final_exponentiation(result).is_some_and(|out| out.0.is_one())
    }

    /// The key file of the verifying key.
    pub fn to_file_bytes(&self, circuit_hash: &[u8; 32]) -> Vec<u8> {
        file_bytes("verifying", self.kind, circuit_hash, &self.to_bytes())
    }

    /// The verifying key's arkworks compressed serialisation, no header: the bytes the key
    /// hash covers and the Solidity verifier generator reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.prepared
            .vk
            .serialize_compressed(&mut body)
            .expect("serialising to memory cannot fail");
        body
    }

    /// Reads a verifying key from its compressed serialisation (always checked).
    pub fn from_bytes(kind: CircuitKind, bytes: &[u8]) -> Result<Self, Error> {
        let vk = VerifyingKey::deserialize_compressed(bytes)
            .map_err(|e| encoding("verifying key", e))?;
        Ok(Self::new(kind, vk))
    }
}

/// The key hash of PROTOCOL §11 for a verifying key.
pub fn key_hash<T: CanonicalSerialize>(key: &T) -> [u8; 32] {
    let mut body = Vec::new();
    key.serialize_compressed(&mut body)
        .expect("serialising to memory cannot fail");
    Sha256::digest(&body).into()
}

/// Encodes a proof compressed (128 bytes).
pub fn proof_to_bytes(proof: &Proof) -> [u8; PROOF_LEN] {
    let mut out = Vec::with_capacity(PROOF_LEN);
    proof
        .serialize_compressed(&mut out)
        .expect("serialising to memory cannot fail");
    out.try_into().expect("a compressed proof is 128 bytes")
}

/// Decodes a compressed proof with curve and subgroup checks.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof, Error> {
    if bytes.len() != PROOF_LEN {
        return Err(Error::Length {
            what: "proof",
            expected: PROOF_LEN,
            got: bytes.len(),
        });
    }
    let proof = Proof::deserialize_compressed(bytes).map_err(|e| encoding("proof", e))?;
    if proof.a.is_zero() || proof.b.is_zero() || proof.c.is_zero() {
        return Err(Error::Encoding {
            what: "proof",
            detail: "a proof point is the identity".into(),
        });
    }
    Ok(proof)
}

/// The proof's points as they enter an EVM verifier: `A.x, A.y, B.x1, B.x0, B.y1, B.y0,
/// C.x, C.y`, each a 32-byte big-endian word (256 bytes, PROTOCOL §1 "uncompressed").
pub fn proof_to_evm_words(proof: &Proof) -> [[u8; 32]; 8] {
    fn word<F: PrimeField>(f: F) -> [u8; 32] {
        use ark_ff::BigInteger;
        let mut out = [0u8; 32];
        out.copy_from_slice(&f.into_bigint().to_bytes_be());
        out
    }
    let (a, b, c): (G1Affine, G2Affine, G1Affine) = (proof.a, proof.b, proof.c);
    [
        word(a.x),
        word(a.y),
        word(b.x.c1),
        word(b.x.c0),
        word(b.y.c1),
        word(b.y.c0),
        word(c.x),
        word(c.y),
    ]
}

const FILE_MAGIC: &str = "NULLGATE-KEY";
const FILE_VERSION: u32 = 1;

fn file_bytes(role: &str, kind: CircuitKind, circuit_hash: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let header = format!(
        "{FILE_MAGIC} v{FILE_VERSION} {role} {} DEV (local setup; not for production)\n",
        kind.name()
    );
    let mut out = header.into_bytes();
    out.extend_from_slice(circuit_hash);
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

/// The circuit a key file is for, read from its header.
pub fn key_file_kind(bytes: &[u8]) -> Result<CircuitKind, Error> {
    let (header, _) = split_header(bytes)?;
    header
        .split(' ')
        .nth(3)
        .and_then(CircuitKind::from_name)
        .ok_or_else(|| Error::Key("unknown circuit name in header".into()))
}

/// The hash of the proving key inside a key file (after checking it matches the body).
pub fn key_file_hash(bytes: &[u8]) -> Result<[u8; 32], Error> {
    let (_, rest) = split_header(bytes)?;
    if rest.len() < 64 {
        return Err(Error::Key("truncated key file".into()));
    }
    let body_hash: [u8; 32] = Sha256::digest(&rest[64..]).into();
    if rest[32..64] != body_hash {
        return Err(Error::Key(
            "key hash does not match the key: file corrupted".into(),
        ));
    }
    Ok(body_hash)
}

fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), Error> {
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| Error::Key("no header line: not a nullgate key file".into()))?;
    let header = std::str::from_utf8(&bytes[..newline])
        .map_err(|_| Error::Key("header is not text: not a nullgate key file".into()))?;
    Ok((header, &bytes[newline + 1..]))
}

fn parse_file<'a>(
    bytes: &'a [u8],
    role: &str,
    circuit_hash: &[u8; 32],
    pinned_hash: Option<&[u8; 32]>,
) -> Result<(CircuitKind, &'a [u8]), Error> {
    let (header, rest) = split_header(bytes)?;
    let mut words = header.split(' ');
    if words.next() != Some(FILE_MAGIC) {
        return Err(Error::Key("not a nullgate key file".into()));
    }
    if words.next() != Some(&format!("v{FILE_VERSION}")) {
        return Err(Error::Key(format!(
            "unsupported key file version (this build reads v{FILE_VERSION}); regenerate the key"
        )));
    }
    if words.next() != Some(role) {
        return Err(Error::Key(format!("expected a {role} key")));
    }
    let kind = words
        .next()
        .and_then(CircuitKind::from_name)
        .ok_or_else(|| Error::Key("unknown circuit name in header".into()))?;
    if rest.len() < 64 {
        return Err(Error::Key("truncated key file".into()));
    }
    let (hashes, body) = rest.split_at(64);
    if &hashes[..32] != circuit_hash {
        return Err(Error::Key(format!(
            "the key is for another version of the {} circuit; regenerate it with `nullgate setup`",
            kind.name()
        )));
    }
    let body_hash: [u8; 32] = Sha256::digest(body).into();
    if hashes[32..] != body_hash {
        return Err(Error::Key(
            "key hash does not match the key: file corrupted".into(),
        ));
    }
    if let Some(pinned) = pinned_hash
        && pinned != &body_hash
    {
        return Err(Error::Key(
            "key hash differs from the pinned hash: refusing this key".into(),
        ));
    }
    Ok((kind, body))
}

fn synthesis(error: ark_relations::gr1cs::SynthesisError) -> Error {
    Error::Synthesis(error.to_string())
}

fn encoding(what: &'static str, error: ark_serialize::SerializationError) -> Error {
    Error::Encoding {
        what,
        detail: error.to_string(),
    }
}
