import CofferServices
import Testing

@Suite("Secrets")
struct SecretsTests {
    /// FIPS 180-2 test vectors: the fingerprints behind W10 and the stored API key digests must be real SHA-256.
    @Test("W10 request fingerprints are SHA-256 in lower-case hex", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256Hex(input: String, expected: String) {
        #expect(Secrets.sha256Hex(input) == expected)
    }

    @Test("Tokens are 192 random bits in hex behind their prefix, never repeated")
    func tokens() {
        let a = Secrets.token(prefix: "ck_"), b = Secrets.token(prefix: "ck_")
        #expect(a.hasPrefix("ck_") && a.count == 3 + 48)
        #expect(a.dropFirst(3).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(a != b)
    }
}
