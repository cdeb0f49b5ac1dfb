import CofferCore
import CofferServices
import CofferStorage
import Testing

@Suite("Schema: numbered, append-only migrations")
struct SchemaTests {
    /// The digest of every migration as it shipped. A migration that was applied somewhere may never change: add a new
    /// one instead, and append its digest here.
    static let shipped = [
        "e187876aeb2dcc051b58beb9575f5f8c774d172c5a2c9e0438677fa19d752deb",  // 1
        "db4d8695e5842e7c67915cd5783a67ff2da5f19316aea76e7c68bccc0f68a880",  // 2
        "e1ed994a3a99d8a49b10b0e4d5c34a86ee2bdf6deec1f822c5fcd8b2587e0bbb",  // 3
        "b40b01a3c49c9ff9f405d0a39dc0ae3973600a1a4b5cddd9a4733c86f6921471",  // 4
        "6aaab9b530fdd8749a536fb41260fef6608a236714524a3ea08b7c17eb97d13d",  // 5
        "03a560d9bbd3ceb3b294f2d61186c6f709841857a84f503e72faff49ebe733da",  // 6
        "14955d269afa6cb3950f45a3d1491ff5946986484e7d5dd12464bb8e6b79f4fd",  // 7
        "3bc30fcef87381b75b70cd6167244659e01060d55a0f8800fb008992a7985822",  // 8
        "aa0ce8093dd59cd64f86de7865d72c6fdc34904e7565a41562f7155fa297db23",  // 9
        "6e45114c2ad163e039c70f814c6b797680611c5bffd67801651ecc04142f8f3e",  // 10
        "888724630f170e972129b9773f71e594325243aaa6799ac33ff17b45aa054704",  // 11
        "aefa0f53480171ceef06200a3cc16a7a94ed41de3da26e353fca1bf3feb06cf6",  // 12
        "14cf2ea8bc3c55e3c6e4ce332b122222684b7cfa0986726d03b192d05732bcf9",  // 13
        "6f100065525da37f9d5482a1f18b2cccba50d0dc5d3c7c97d8447658a06a53f5",  // 14
        "8acc9098f60daf9b543ba727fb5abf666275197b614096e71021aa0caa4f259a",  // 15
        "df7ca994ba3f4c58901ab44cbb844141a1464877c67dc87a83209b4ecad59956",  // 16
        "dbac2bc409a1c71a8d8331c473ac870d2424a71cac2a798666b61df553ac85e7",  // 17
        "148effbf81c3b55202416e3065a8d1a854c845d6d1d0ef182402befc7e96416f",  // 18
        "f1b157ddc88bd6b1b188a4a2ec99bc4c860ade1ffe431ffc9fc50d2f55a99abc",  // 19
        "485cfcc3e01c0e9c4d8b52ff02f5a742542c8441c8e6111dfc7faef3a0c580af",  // 20
        "372ed9833a712044f8d731dc2a2dd647386b517cd6b462220ce41870cb2b5b68",  // 21
        "1abc84a2bdfa838f0c31b63dd56f050277797b084e6a4eb7ebeb2ed20a0073f8",  // 22
    ]

    @Test("An applied migration's text never changes; new ones are appended")
    func migrationsAreAppendOnly() {
        let digests = SQLStore.migrationDigests
        #expect(digests.count >= Self.shipped.count)
        for (index, digest) in Self.shipped.enumerated() where index < digests.count {
            #expect(digests[index] == digest, "migration \(index + 1) changed; write a new migration instead")
        }
        #expect(digests.count == Self.shipped.count, "a new migration: append its digest \(digests.last ?? "") here")
    }
}
