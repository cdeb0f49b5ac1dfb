import CofferCore
import Foundation

/// B5: projects of an account and the resources the provider registers. A bill line takes the resource's project at
/// deduction time, so renaming a project or moving a resource changes later lines only.
public struct ResourceService: Sendable {
    public static let maxTags = 20
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator) {
        (self.store, self.clock, self.ids) = (store, clock, ids)
    }

    public func createProject(accountId: String, name: String, idempotencyKey: String) async throws -> (ProjectRecord, replayed: Bool) {
        let name = try TextRules.required(name, field: "name", max: 64)
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "project|\(accountId)|\(name)")
        if let earlier: ProjectRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        let now = clock.nowMicros()
        let project = ProjectRecord(accountId: accountId, id: ids.make("prj"), name: name, createdAtMicros: now, updatedAtMicros: now)
        return try await Idempotent.write(store, ctx, project, at: now) { tx in
            guard try await tx.insertProject(project) else { throw Self.nameTaken(name) }
        }
    }

    /// Renaming is idempotent by content (the same name again changes nothing), like a PUT.
    public func renameProject(accountId: String, id: String, name: String) async throws -> ProjectRecord {
        let name = try TextRules.required(name, field: "name", max: 64)
        guard let current = try await store.project(accountId: accountId, id: id) else { throw CofferError.notFound(.projectNotFound, id) }
        if current.name == name { return current }
        let renamed = try await store.transaction { tx in
            try await tx.renameProject(accountId: accountId, id: id, name: name, nowMicros: clock.nowMicros())
        }
        guard let renamed else { throw Self.nameTaken(name) }
        return renamed
    }

    static func nameTaken(_ name: String) -> CofferError {
        CofferError(.projectNameTaken, "A project named \(name.prefix(64)) already exists in this account; choose another name.")
    }

    /// What the provider sends for a resource.
    public struct ResourceInput: Sendable {
        public var productId: String
        public var name: String
        public var region: String?
        public var projectId: String?
        public var tags: [String: String]
        public init(productId: String, name: String, region: String?, projectId: String?, tags: [String: String]) {
            (self.productId, self.name, self.region, self.projectId, self.tags) = (productId, name, region, projectId, tags)
        }
    }

    /// `PUT …/resources/{id}`: registers the resource or replaces what it is (product, name, region, project, tags).
    /// Idempotent by content; answers whether it was created.
    public func putResource(accountId: String, id: String, _ input: ResourceInput) async throws -> (ResourceRecord, created: Bool) {
        guard Self.validId(id) else { throw CofferError.invalidField("resourceId", "must be 1–100 visible ASCII characters") }
        let name = try TextRules.required(input.name, field: "name", max: 100)
        let region = try TextRules.optional(input.region, field: "region", max: 64)
        let tags = try Self.tags(input.tags)
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        guard try await store.product(id: input.productId) != nil else { throw CofferError.notFound(.productNotFound, input.productId) }
        if let projectId = input.projectId, try await store.project(accountId: accountId, id: projectId) == nil {
            throw CofferError.notFound(.projectNotFound, projectId)
        }
        let now = clock.nowMicros()
        let existing = try await store.resource(accountId: accountId, id: id)
        let resource = ResourceRecord(accountId: accountId, id: id, productId: input.productId, name: name, region: region,
                                      projectId: input.projectId, tags: tags, createdAtMicros: existing?.createdAtMicros ?? now,
                                      updatedAtMicros: now)
        if let existing, Self.sameContent(existing, resource) { return (existing, false) }
        let created = try await store.transaction { tx in try await tx.putResource(resource) }
        return (resource, created)
    }

    /// The customer's side (B5): move a resource to a project, or to none (`projectId` nil).
    public func assignProject(accountId: String, resourceId: String, projectId: String?) async throws -> ResourceRecord {
        guard var resource = try await store.resource(accountId: accountId, id: resourceId) else {
            throw CofferError.notFound(.resourceNotFound, resourceId)
        }
        if let projectId, try await store.project(accountId: accountId, id: projectId) == nil {
            throw CofferError.notFound(.projectNotFound, projectId)
        }
        guard resource.projectId != projectId else { return resource }
        resource.projectId = projectId
        resource.updatedAtMicros = clock.nowMicros()
        let r = resource
        _ = try await store.transaction { tx in try await tx.putResource(r) }
        return resource
    }

    static func sameContent(_ a: ResourceRecord, _ b: ResourceRecord) -> Bool {
        (a.productId, a.name, a.region, a.projectId, a.tags) == (b.productId, b.name, b.region, b.projectId, b.tags)
    }

    /// 1–100 visible ASCII characters: the provider's own id for the resource (`ins-8x2k`).
    public static func validId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 100 && id.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    /// At most 20 tags; keys 1–64 characters, values up to 128.
    public static func tags(_ tags: [String: String], field: String = "tags") throws(CofferError) -> [String: String] {
        guard tags.count <= maxTags else { throw .invalidField(field, "at most \(maxTags) tags") }
        var out: [String: String] = [:]
        for (k, v) in tags {
            let key = try TextRules.required(k, field: "\(field) key", max: 64)
            guard TextRules.length(v) <= 128 else { throw .invalidField("\(field).\(key.prefix(64))", "must be at most 128 characters") }
            out[key] = TextRules.trimmed(v)
        }
        return out
    }

    /// Tags as stored: a JSON object with sorted keys, or nil when there are none.
    public static func tagsJSON(_ tags: [String: String]) -> String? {
        guard !tags.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(tags)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func tags(fromJSON text: String?) -> [String: String] {
        guard let text, let tags = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else { return [:] }
        return tags
    }
}
