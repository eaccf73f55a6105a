// Package gnarkhost proves gnark circuits (github.com/consensys/gnark) with Groth16 and PLONK
// on BN254: hosts for a prover node whose proofs are verified on Ethereum, or by anyone with
// the verifying key.
//
// A circuit is registered once, under an id, with Setup, which compiles it and makes its keys,
// or reads them from a cache on disk where an earlier start left them; a host then proves
// inputs with those keys:
//
//	keys, err := gnarkhost.Setup(gnarkhost.Config{CacheDir: "data/keys"}, gnarkhost.Circuit{
//		ID: "transition-v1", Scheme: gnarkhost.Groth16, Definition: &Transition{Rounds: 64},
//	})
//	...
//	host := &gnarkhost.Host[State]{Keys: keys, Assign: func(s State) (frontend.Circuit, error) {
//		return &Transition{From: s.From, To: s.To, Rounds: 64}, nil
//	}}
//
// and host goes in a handler.RemoteProofHandler's Hosts, for a backend of one worker.
//
// # The cache
//
// Setup is the slow part: 23.5 s for a Groth16 circuit of 100,000 constraints on two cores,
// where reading its cached keys takes under a tenth of a second. The cache holds the
// constraint system, the proving key in gnark's fastest encoding (a memory dump for Groth16,
// raw points for PLONK) and the verifying key, with a manifest that names the circuit, scheme,
// curve, gnark version, architecture and SRS and holds every file's SHA-256. Those fast
// encodings skip gnark's checks, so a file is decoded only once its checksum matches; a
// damaged file, a gnark upgrade or a changed circuit makes Setup set up again and say why in
// Keys.CacheError. Never trusted, always rebuilt.
//
// # PLONK and its SRS
//
// PLONK sets up from a KZG SRS that a multi-party ceremony made, such as Aztec's Ignition:
// SRSFile reads one, derives the Lagrange form a circuit's size needs, and caches that too.
// InsecureTestSRS makes one from a secret this process knows, which lets anyone who knows it
// forge proofs: for tests only, and used only where a Config names it.
//
// # Proofs
//
// Every proof is verified with the verifying key before a host returns it, so that no
// invalid proof is ever stored. A proof's Receipt is gnark's encoding of it and its
// PublicValues the public witness; VerifyingKey.Verify checks one later, PublicWitness reads
// its public inputs, and VerifyingKey.ExportSolidity and SolidityProof give a contract that
// verifies them and the bytes to call it with.
//
// # In process or in a prover process
//
// gnark's provers take no context and use every core. Host proves in the node's process:
// quickest, but a cancelled task or a timeout takes effect after the current proof, and a
// proof that exhausts memory takes the node down. Subprocess runs each proof in a process of
// its own (this program again, with ProverCommand, dispatched to ProverMain), killed on
// cancellation or timeout within a fraction of a second, and whose crashes fail an attempt,
// not the node; it costs the start of a process and a read of the cached keys per proof.
//
// gnark logs each compile and proof on stdout through its own logger; a node usually turns
// that off with github.com/consensys/gnark/logger.Disable, as examples/provernode does.
//
// circuit.go holds Circuit and compiling; setup.go Setup; cache.go the cache; srs.go the
// SRSs; keys.go Keys, VerifyingKey and verifying; host.go and subprocess.go the hosts.
package gnarkhost
