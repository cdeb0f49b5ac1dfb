import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache

public struct WebSettings: Sendable {
    /// Marks cookies Secure. Browsers accept Secure cookies from http://localhost, so this stays on for local use too;
    /// only a plain-HTTP deployment on another host name needs it off (and should not exist).
    public var secureCookies = true
    public init() {}
}

/// The console: server-rendered pages for customers (/) and operators (/desk), beside the API on the same server.
/// Handlers are thin: they read the form, call a service, and hand a page model to a Mustache template.
public struct WebConsole: RouteModule {
    let deps: HTTPDependencies
    var engine: CofferEngine { deps.engine }
    let templates: MustacheLibrary
    let catalogs: Catalogs
    let settings: WebSettings
    let logger: Logger

    public static func load(deps: HTTPDependencies, settings: WebSettings = .init(),
                            logger: Logger = Logger(label: "coffer.web")) async throws -> WebConsole {
        guard let dir = Bundle.module.resourceURL?.appendingPathComponent("templates").path else {
            throw CofferError(.templatesMissing, "The console's templates are not in the bundle.")
        }
        return WebConsole(deps: deps, templates: try await MustacheLibrary(directory: dir),
                          catalogs: try Catalogs.load(), settings: settings, logger: logger)
    }

    public func register(on router: Router<CofferContext>) {
        let web = router.group().add(middleware: WebErrorMiddleware(console: self))
        web.get("/static/:file", use: staticFile)
        web.get("/lang/:lang", use: switchLanguage)
        SignInPages(console: self).register(on: web)
        CustomerPages(console: self).register(on: web)
        DeskPages(console: self).register(on: web)
        BillPages(console: self).register(on: web)
        OrderPages(console: self).register(on: web)
        AuditPages(console: self).register(on: web)
    }

    // MARK: requests

    /// What every page needs to know about the request.
    struct Visit: Sendable {
        var lang: Language
        var session: ConsoleSession?
        var path: String
        var query: String
        var client: String
    }

    func visit(_ request: Request, _ context: CofferContext) async throws -> Visit {
        try await visit(request, remoteIP: context.remoteIP)
    }

    /// The client's address as the HTTP layer resolved it (X-Forwarded-For only from a trusted proxy).
    func visit(_ request: Request, remoteIP: String?) async throws -> Visit {
        let cookies = Cookies.parse(request.headers[.cookie])
        let lang = cookies["coffer_lang"].flatMap(Language.init(rawValue:))
            ?? Language.negotiate(acceptLanguage: request.headers[.acceptLanguage])
        var session: ConsoleSession?
        if let token = cookies[Cookies.session] { session = try await engine.console.session(token: token) }
        return Visit(lang: lang, session: session, path: request.uri.path, query: request.uri.query ?? "",
                     client: remoteIP ?? "unknown")
    }

    /// A signed-in customer with the permission the page needs (W12); operators are sent to the desk.
    func customer(_ request: Request, _ context: CofferContext, needs: Permission) async throws -> (Visit, String) {
        let v = try await visit(request, context)
        guard let session = v.session else { throw WebFlow.redirect(signInPath(v, desk: false)) }
        guard let accountId = session.principal.accountId else { throw WebFlow.redirect("/desk") }
        try Access.check(session.principal, account: accountId, needs: needs)
        return (v, accountId)
    }

    func staff(_ request: Request, _ context: CofferContext) async throws -> Visit {
        let v = try await visit(request, context)
        guard let session = v.session else { throw WebFlow.redirect(signInPath(v, desk: true)) }
        guard session.principal.isOperator else { throw CofferError.forbidden }
        return v
    }

    func signInPath(_ v: Visit, desk: Bool) -> String {
        let next = v.path + (v.query.isEmpty ? "" : "?" + v.query)
        return (desk ? "/desk/login" : "/login") + "?next=" + (next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/")
    }

    /// Reads a posted form and checks its CSRF token against the session's (synchronizer token).
    func form(_ request: Request, _ v: Visit) async throws -> [String: String] {
        let fields = try await Forms.urlEncoded(request)
        try checkCSRF(fields["csrf"], v)
        return fields
    }

    func checkCSRF(_ sent: String?, _ v: Visit) throws {
        guard let expected = v.session?.record.csrfToken, let sent, Cookies.constantTimeEqual(sent, expected) else {
            throw CofferError(.csrfFailed, "This form has expired or did not come from this site. Reload the page and try again.")
        }
    }

    // MARK: rendering

    /// Renders a page inside the layout. `model` is the page's own data; the layout's data is added here.
    func page(_ template: String, _ v: Visit, title: String, model: [String: Any] = [:],
              status: HTTPResponse.Status = .ok, notice: String? = nil, error: String? = nil) -> Response {
        let t = catalogs.table(v.lang)
        var data = Self.clean(model)
        data["t"] = t
        data["lang"] = v.lang.htmlTag
        data["otherLang"] = v.lang.other.rawValue
        data["otherLangName"] = t["lang_name_\(v.lang.other.rawValue)"] ?? v.lang.other.rawValue
        // The language link carries the page to return to as one query value: percent-encoded, so that its own "&"s stay in it.
        data["back"] = (v.path + (v.query.isEmpty ? "" : "?" + v.query)).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"
        data["title"] = title
        data["notice"] = notice ?? noticeFromQuery(v)
        data["error"] = error
        if let s = v.session {
            data["csrf"] = s.record.csrfToken
            data["me"] = ["name": s.name, "email": s.email]
            if s.principal.isOperator {
                data["deskNav"] = true
            } else if case .consoleUser(_, _, let role) = s.principal {
                data["customerNav"] = true
                data["canFinance"] = role != .member
                data["isOwner"] = role == .owner
            }
        }
        data["nav_" + template.replacingOccurrences(of: "/", with: "_")] = true
        let html = templates.render(data, withTemplate: template) ?? "<!doctype html><title>Coffer</title><p>\(template) missing</p>"
        return Self.html(html, status: status)
    }

    /// Drops nil, empty strings and empty dictionaries (recursively): an absent value must hide its `{{#section}}`, not
    /// render as "nil" or show an empty box.
    static func clean(_ model: [String: Any]) -> [String: Any] {
        var out: [String: Any] = [:]
        for (key, value) in model {
            if let c = cleanValue(value) { out[key] = c }
        }
        return out
    }

    private static func cleanValue(_ value: Any) -> Any? {
        let m = Mirror(reflecting: value)
        if m.displayStyle == .optional {
            guard let inner = m.children.first?.value else { return nil }
            return cleanValue(inner)
        }
        switch value {
        case let s as String: return s.isEmpty ? nil : s
        case let d as [String: Any]:
            let c = clean(d)
            return c.isEmpty ? nil : c
        case let a as [[String: Any]]: return a.map(clean)
        case let a as [[String: String]]: return a.map { clean($0) }
        default: return value
        }
    }

    static func html(_ html: String, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// After a redirect the page names what happened by a catalog key (`?notice=`); unknown keys show nothing.
    func noticeFromQuery(_ v: Visit) -> String? {
        let params = Forms.parseURLEncoded(v.query)
        guard let key = params["notice"], key.hasPrefix("notice_") else { return nil }
        return catalogs.table(v.lang)[key]
    }

    func t(_ v: Visit, _ key: String, _ args: [String: String] = [:]) -> String { catalogs.text(v.lang, key, args) }

    /// A payment channel as the page's language names it (the catalog's title for a channel the catalogs do not know).
    func channelName(_ v: Visit, _ channel: String) -> String {
        catalogs.table(v.lang)["channel_name_" + channel] ?? engine.recharges.catalog.first { $0.name == channel }?.title ?? channel
    }

    /// A site message as the reader reads it: from the catalogs in the page's language when it came from an event
    /// (`message_<kind>_title` / `_body` with the event's parameters), else the text it was written with.
    func messageText(_ m: SiteMessageRecord, _ v: Visit) -> (title: String, body: String) { catalogs.messageText(m, v.lang) }

    /// An error as a person reads it: the catalog's text for its code in the page's language, with the error's parameters.
    func message(_ error: CofferError, _ v: Visit) -> String {
        t(v, "error_" + error.code.rawValue, error.parameters)
    }

    /// A form post that failed validation shows its page again with the message and the error's own status; internal
    /// errors go on to the error page.
    func orShow(_ v: Visit, _ show: (String?, HTTPResponse.Status) async throws -> Response,
                _ action: () async throws -> Response) async throws -> Response {
        do {
            return try await action()
        } catch let e as CofferError where e.kind != .internalError && e.kind != .badGateway {
            return try await show(message(e, v), e.kind.httpStatus)
        }
    }

    /// One line of 收支明细 as the customer pages and the desk show it.
    func row(_ t: TransactionRecord, _ v: Visit, _ tz: String) -> [String: Any] {
        let m = t.movement
        return ["id": t.id, "time": Display.time(t.createdAtMicros, timeZone: tz, withSeconds: true),
                "type": self.t(v, "type_" + m.type.rawValue), "amount": Display.money(m.amountMinor),
                "incoming": m.amountMinor > 0, "cash": Display.money(m.cashDeltaMinor), "gift": Display.money(m.giftDeltaMinor),
                "frozen": Display.money(m.frozenDeltaMinor), "balanceAfter": Display.money(m.balanceAfterMinor),
                "availableAfter": Display.money(m.availableAfterMinor), "memo": t.memo ?? "", "tradeNo": t.channelTradeNo ?? "",
                // The record names what it belongs to (the recharge order's rch_…, the order, the charge) as that object's
                // own page and messages do; the channel's trade number is labelled as the channel's.
                "related": t.relatedId ?? ""]
    }

    /// The request's query as a dictionary (the last value of a repeated name).
    func query(_ request: Request) -> [String: String] { request.queryDictionary }

    /// Product names in the page's language, by product id.
    func productNames(_ v: Visit) async throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try await engine.store.products().map { ($0.id, v.lang == .zh ? $0.nameZh : $0.nameEn) })
    }

    /// The account's time zone (dates on its pages are its own).
    func timeZone(_ accountId: String) async throws -> String {
        try await engine.store.account(id: accountId)?.timeZone ?? "Asia/Shanghai"
    }

    /// Who did it, for the journal and the audit log.
    func actor(_ v: Visit) -> String { v.session!.principal.actor }

    /// A new idempotency key for a form: submitting the same form twice does the work once (W10).
    func formKey() -> String { "web-" + Secrets.token(prefix: "").prefix(32) }

    // MARK: small routes

    @Sendable func staticFile(_ request: Request, _ context: CofferContext) async throws -> Response {
        let name = try context.param("file")
        let types = ["console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"]
        guard let type = types[name],
              let url = Bundle.module.url(forResource: (name as NSString).deletingPathExtension,
                                          withExtension: (name as NSString).pathExtension, subdirectory: "static"),
              let data = FileManager.default.contents(atPath: url.path) else { throw CofferError.notFound(.routeNotFound, name) }
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "public, max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The language switch: remembered in a cookie for a year, then back to the page the visitor was on.
    @Sendable func switchLanguage(_ request: Request, _ context: CofferContext) async throws -> Response {
        guard let lang = Language(rawValue: try context.param("lang")) else { throw CofferError.notFound(.routeNotFound, "") }
        let back = request.uri.queryParameters["back"].map(String.init) ?? "/"
        var headers = HTTPFields()
        headers[.setCookie] = Cookies.make("coffer_lang", lang.rawValue, maxAgeSeconds: 365 * 86_400, httpOnly: false,
                                           secure: settings.secureCookies)
        headers[.location] = Cookies.localPath(back)
        return Response(status: .seeOther, headers: headers)
    }

    public func htmlError(_ request: Request, _ error: CofferError) async -> Response? {
        let v = (try? await visit(request, remoteIP: nil)) ?? Visit(lang: .zh, session: nil, path: "/", query: "", client: "")
        return errorPage(error, v)
    }

    func errorPage(_ error: CofferError, _ v: Visit) -> Response {
        let status = error.kind.httpStatus
        let key: String = switch error.kind {
        case .forbidden: "error_page_forbidden"
        case .notFound: "error_page_not_found"
        case .unauthorized: "error_page_unauthorized"
        case .tooManyRequests: "error_page_too_many"
        case .internalError, .badGateway: "error_page_internal"
        default: "error_page_bad_request"
        }
        let detail = error.detail.isEmpty ? nil : message(error, v)
        return page("error", v, title: t(v, key), model: ["heading": t(v, key), "advice": t(v, key + "_advice"),
                                                          // A missing page needs no code to quote to support.
                                                          "detail": detail as Any, "code": error.kind == .notFound ? "" : error.code.rawValue,
                                                          "status": status.code],
                    status: status)
    }
}

/// Control flow of a page handler that is not an error: go elsewhere.
enum WebFlow: Error {
    case redirect(String)
}

/// Error pages for the console's routes: the real status code, what to do next, never a stack trace.
struct WebErrorMiddleware: RouterMiddleware {
    typealias Context = CofferContext
    let console: WebConsole

    func handle(_ request: Request, context: CofferContext,
                next: (Request, CofferContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch WebFlow.redirect(let location) {
            var headers = HTTPFields()
            headers[.location] = location
            return Response(status: .seeOther, headers: headers)
        } catch {
            let coffer: CofferError
            switch error {
            case let e as CofferError: coffer = e
            case let e as HTTPError where e.status == .notFound:
                coffer = CofferError(.routeNotFound, "")
            case let e as HTTPError where e.status == .contentTooLarge:
                coffer = CofferError.bodyTooLarge
            default:
                console.logger.error("console error on \(request.method) \(request.uri.path): \(String(describing: error))")
                coffer = CofferError(.internalError, "")
            }
            let v = (try? await console.visit(request, context)) ?? WebConsole.Visit(lang: .zh, session: nil, path: "/", query: "", client: "")
            return console.errorPage(coffer, v)
        }
    }
}
