// Copies the ABI and bytecode of the deployable contracts from forge's out/ into artifacts/,
// the committed files the Rust workspace builds from (no Node needed there).
// Run from contracts/ after `forge build`.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const CONTRACTS = [
  ["NoteVault.sol", "NoteVault"],
  ["ExitVerifier.sol", "ExitVerifier"],
];

mkdirSync("artifacts", { recursive: true });
for (const [file, name] of CONTRACTS) {
  const built = JSON.parse(readFileSync(`out/${file}/${name}.json`, "utf8"));
  const artifact = {
    contractName: name,
    compiler: "solc 0.8.37 (npm solc, via forge 1.7.1); see contracts/foundry.toml",
    abi: built.abi,
    bytecode: { object: built.bytecode.object },
    deployedBytecode: { object: built.deployedBytecode.object },
  };
  writeFileSync(`artifacts/${name}.json`, JSON.stringify(artifact, null, 2) + "\n");
  console.log(`wrote artifacts/${name}.json`);
}
