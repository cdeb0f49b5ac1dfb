import CofferCore

/// What the provider sends for one usage record, before validation (B1).
public struct UsageRecordInput: Sendable {
    public var id: String
    public var accountId: String
    public var resourceId: String
    public var component: String
    public var quantity: String
    public var unit: String
    public var unitPrice: String
    public var listUnitPrice: String?
    public var periodStart: String
    public var periodEnd: String
    public var region: String?
    public var tags: [String: String]?
    public init(id: String, accountId: String, resourceId: String, component: String, quantity: String, unit: String,
                unitPrice: String, listUnitPrice: String? = nil, periodStart: String, periodEnd: String, region: String? = nil,
                tags: [String: String]? = nil) {
        (self.id, self.accountId, self.resourceId, self.component, self.quantity, self.unit) = (id, accountId, resourceId, component, quantity, unit)
        (self.unitPrice, self.listUnitPrice, self.periodStart, self.periodEnd) = (unitPrice, listUnitPrice, periodStart, periodEnd)
        (self.region, self.tags) = (region, tags)
    }
}

/// The answer for one record of a request.
public enum UsageResult: Sendable, Equatable {
    case accepted
    /// The same id with the same content was stored before (or earlier in this request): counted once.
    case duplicate
    case refused(CofferError)
}

/// B1: usage ingestion. Every record is checked on its own; a bad one is refused with its code and writes nothing, the
/// good ones of the same request are stored in one transaction that commits before the answer (durable, like the
/// ledger). Records are rated (M2) and placed in their cycle here, so that settlement only adds.
public struct UsageIngestion: Sendable {
    let store: any CofferStore
    let clock: any Clock

    public init(store: any CofferStore, clock: any Clock) {
        (self.store, self.clock) = (store, clock)
    }

    public func ingest(_ inputs: [UsageRecordInput]) async throws -> [UsageResult] {
        guard (1...UsageRules.maxRecordsPerRequest).contains(inputs.count) else {
            throw CofferError(.batchSizeInvalid, "Send 1–\(UsageRules.maxRecordsPerRequest) usage records per request.")
        }
        let now = clock.nowMicros()
        var results = [UsageResult?](repeating: nil, count: inputs.count)
        var parsed: [(index: Int, draft: Draft)] = []
        for (i, input) in inputs.enumerated() {
            do throws(CofferError) { parsed.append((i, try Self.parse(input, nowMicros: now))) } catch { results[i] = .refused(error) }
        }
        let keys = Array(Set(parsed.map { ObjectKey($0.draft.accountId, $0.draft.resourceId) }))
        let targets = keys.isEmpty ? [:] : try await store.usageTargets(keys)
        var accountsChecked: [String: Bool] = [:]
        var windows = CycleMemo()
        var firstOfId: [ObjectKey: (index: Int, hash: String)] = [:]
        var records: [UsageRecord] = []
        var recordIndex: [ObjectKey: Int] = [:]
        /// Later copies of an id in this request, with the same content: (index, index of the first copy).
        var copies: [(index: Int, first: Int)] = []
        for (i, d) in parsed {
            guard let target = targets[ObjectKey(d.accountId, d.resourceId)] else {
                if accountsChecked[d.accountId] == nil { accountsChecked[d.accountId] = try await store.account(id: d.accountId) != nil }
                results[i] = .refused(accountsChecked[d.accountId]! ? .notFound(.resourceNotFound, d.resourceId) : .notFound(.accountNotFound, d.accountId))
                continue
            }
            let key = ObjectKey(d.accountId, d.id)
            if let first = firstOfId[key] {
                if first.hash == d.contentHash { copies.append((i, first.index)) } else { results[i] = .refused(Self.conflict(d.id)) }
                continue
            }
            let cycle: CycleWindow
            do throws(CofferError) {
                cycle = try windows.window(containing: d.periodStartMicros, cycle: target.cycle, timeZone: target.timeZone)
            } catch { results[i] = .refused(error); continue }
            firstOfId[key] = (i, d.contentHash)
            recordIndex[key] = i
            records.append(UsageRecord(
                accountId: d.accountId, id: d.id, resourceId: d.resourceId, productId: target.resource.productId,
                component: d.component, unit: d.unit, quantityUnits: d.quantityUnits, unitPriceUnits: d.unitPriceUnits,
                listUnitPriceUnits: d.listUnitPriceUnits, amountUnits: d.amountUnits, listAmountUnits: d.listAmountUnits,
                periodStartMicros: d.periodStartMicros, periodEndMicros: d.periodEndMicros, region: d.region, tagsJSON: d.tagsJSON,
                cycle: cycle, contentHash: d.contentHash, receivedAtMicros: now))
        }
        let stored = records.isEmpty ? [:] : try await store.insertUsage(records)
        for r in records {
            let key = ObjectKey(r.accountId, r.id)
            let i = recordIndex[key]!
            if let earlier = stored[key] {
                results[i] = earlier == r.contentHash ? .duplicate : .refused(Self.conflict(r.id))
            } else {
                results[i] = .accepted
            }
        }
        // A later copy is a duplicate of its first copy — or refused like it, when the first conflicts with a stored one.
        for (i, first) in copies {
            if case .refused = results[first]! { results[i] = results[first] } else { results[i] = .duplicate }
        }
        return results.map { $0! }
    }

    static func conflict(_ id: String) -> CofferError {
        CofferError(.usageRecordConflict, "Usage record \(id.prefix(100)) was already reported with other content; a new usage needs a new id.")
    }

    struct Draft: Sendable {
        var id, accountId, resourceId, component, unit: String
        var quantityUnits, unitPriceUnits: Int64
        var listUnitPriceUnits: Int64?
        var amountUnits: Int64
        var listAmountUnits: Int64?
        var periodStartMicros, periodEndMicros: Int64
        var region, tagsJSON: String?
        var contentHash: String
    }

    /// Every check of one record that needs no database.
    static func parse(_ r: UsageRecordInput, nowMicros: Int64) throws(CofferError) -> Draft {
        guard ResourceService.validId(r.id) else { throw .invalidField("id", "must be 1–100 visible ASCII characters") }
        guard ResourceService.validId(r.accountId) else { throw .invalidField("accountId", "must be 1–100 visible ASCII characters") }
        guard ResourceService.validId(r.resourceId) else { throw .invalidField("resourceId", "must be 1–100 visible ASCII characters") }
        let component = try TextRules.required(r.component, field: "component", max: 64)
        let unit = try TextRules.required(r.unit, field: "unit", max: 32)
        let quantity = try Rating.parse(r.quantity, field: "quantity")
        let price = try Rating.parse(r.unitPrice, field: "unitPrice")
        let listPrice = try r.listUnitPrice.map { t throws(CofferError) in try Rating.parse(t, field: "listUnitPrice") }
        let (amount, listAmount) = try UsageRules.rate(quantityUnits: quantity, unitPriceUnits: price, listUnitPriceUnits: listPrice)
        guard let start = RFC3339.parse(r.periodStart) else { throw .invalidField("periodStart", "must be an RFC 3339 time like 2026-11-01T00:00:00Z") }
        guard let end = RFC3339.parse(r.periodEnd) else { throw .invalidField("periodEnd", "must be an RFC 3339 time like 2026-11-01T01:00:00Z") }
        try UsageRules.checkPeriod(startMicros: start, endMicros: end, nowMicros: nowMicros)
        let region = try TextRules.optional(r.region, field: "region", max: 64)
        let tagsJSON = ResourceService.tagsJSON(try ResourceService.tags(r.tags ?? [:]))
        // What the provider asked for, normalized (times as instants, amounts as units): the duplicate test.
        let content = [r.accountId, r.id, r.resourceId, component, unit, String(quantity), String(price),
                       listPrice.map(String.init) ?? "-", String(start), String(end), region ?? "-", tagsJSON ?? "-"]
        return Draft(id: r.id, accountId: r.accountId, resourceId: r.resourceId, component: component, unit: unit,
                     quantityUnits: quantity, unitPriceUnits: price, listUnitPriceUnits: listPrice, amountUnits: amount,
                     listAmountUnits: listAmount, periodStartMicros: start, periodEndMicros: end, region: region,
                     tagsJSON: tagsJSON, contentHash: Secrets.sha256Hex(content.joined(separator: "\u{1F}")))
    }
}

/// The cycle of the last record per (zone, cycle kind): a request's records mostly share hours, and the tz database is
/// the costly part of placing a record.
struct CycleMemo {
    private var last: [String: CycleWindow] = [:]
    mutating func window(containing micros: Int64, cycle: SettlementCycle, timeZone: String) throws(CofferError) -> CycleWindow {
        let key = timeZone + "|" + cycle.rawValue
        if let w = last[key], w.startMicros <= micros, micros < w.endMicros { return w }
        let w = try SettlementCalendar.window(containing: micros, cycle: cycle, timeZone: timeZone)
        last[key] = w
        return w
    }
}
