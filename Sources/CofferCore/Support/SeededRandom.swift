/// SplitMix64: a small, fast generator whose whole sequence follows from one seed, so that a property test or a benchmark
/// that found something can be run again exactly (`COFFER_TEST_SEED`). Not for secrets (see `Secrets`).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    /// The seed from `COFFER_TEST_SEED` when it is set, else a fresh one; printed so that a failure can be replayed.
    public static func forTest(_ name: String, environment: [String: String]) -> SeededRandom {
        let seed = environment["COFFER_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("property test \(name): seed \(seed) (replay with COFFER_TEST_SEED=\(seed))")
        return SeededRandom(seed: seed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
