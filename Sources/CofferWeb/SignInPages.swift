import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// Sign-in, sign-out and password change, for customers (/login) and operators (/desk/login).
struct SignInPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/", use: home)
        web.get("/login") { r, c in try await showSignIn(r, c, desk: false) }
        web.post("/login") { r, c in try await signIn(r, c, desk: false) }
        web.get("/desk/login") { r, c in try await showSignIn(r, c, desk: true) }
        web.post("/desk/login") { r, c in try await signIn(r, c, desk: true) }
        web.post("/logout", use: signOut)
        web.get("/password", use: showPassword)
        web.post("/password", use: changePassword)
    }

    @Sendable func home(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.visit(request, context)
        guard let s = v.session else { throw WebFlow.redirect("/login") }
        throw WebFlow.redirect(s.principal.isOperator ? "/desk" : "/overview")
    }

    func showSignIn(_ request: Request, _ context: CofferContext, desk: Bool, error: String? = nil,
                    status: HTTPResponse.Status = .ok, email: String = "") async throws -> Response {
        let v = try await console.visit(request, context)
        let token = Secrets.token(prefix: "")
        let next = Cookies.localPath(request.uri.queryParameters["next"].map(String.init) ?? (desk ? "/desk" : "/overview"))
        var response = console.page("login", v, title: console.t(v, desk ? "desk_sign_in_title" : "sign_in_title"),
                                    model: ["signInCSRF": token, "next": next, "desk": desk, "email": email,
                                            "action": desk ? "/desk/login" : "/login"],
                                    status: status, error: error)
        response.headers[.setCookie] = Cookies.make(Cookies.signInCSRF, token, maxAgeSeconds: 3_600, secure: console.settings.secureCookies)
        return response
    }

    func signIn(_ request: Request, _ context: CofferContext, desk: Bool) async throws -> Response {
        let v = try await console.visit(request, context)
        let fields = try await Forms.urlEncoded(request, limitBytes: 8 * 1_024)
        // Login CSRF: the form's token must equal the cookie set with the form.
        guard let sent = fields["csrf"], let cookie = Cookies.parse(request.headers[.cookie])[Cookies.signInCSRF],
              Cookies.constantTimeEqual(sent, cookie) else {
            return try await showSignIn(request, context, desk: desk, error: console.t(v, "error_csrf_failed"), status: .forbidden)
        }
        let email = fields["email"] ?? ""
        do {
            let (_, token) = try await engine.console.signIn(email: email, password: fields["password"] ?? "",
                                                             as: desk ? .operator : .user, client: v.client)
            var headers = HTTPFields()
            headers[.setCookie] = Cookies.make(Cookies.session, token, maxAgeSeconds: engine.console.settings.sessionTTLSeconds,
                                               secure: console.settings.secureCookies)
            headers[.location] = Cookies.localPath(fields["next"] ?? "/")
            return Response(status: .seeOther, headers: headers)
        } catch let e as CofferError {
            return try await showSignIn(request, context, desk: desk, error: console.message(e, v),
                                        status: e.kind.httpStatus, email: email)
        }
    }

    @Sendable func signOut(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.visit(request, context)
        _ = try await console.form(request, v)
        if let token = Cookies.parse(request.headers[.cookie])[Cookies.session] { try await engine.console.signOut(token: token) }
        var headers = HTTPFields()
        headers[.setCookie] = Cookies.expire(Cookies.session, secure: console.settings.secureCookies)
        headers[.location] = (v.session?.principal.isOperator == true ? "/desk/login" : "/login") + "?notice=notice_signed_out"
        return Response(status: .seeOther, headers: headers)
    }

    func passwordPage(_ v: WebConsole.Visit, error: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        console.page("password", v, title: console.t(v, "password_title"), status: status, error: error)
    }

    @Sendable func showPassword(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.visit(request, context)
        guard v.session != nil else { throw WebFlow.redirect(console.signInPath(v, desk: false)) }
        return passwordPage(v)
    }

    @Sendable func changePassword(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.visit(request, context)
        guard let session = v.session else { throw WebFlow.redirect(console.signInPath(v, desk: false)) }
        let f = try await console.form(request, v)
        guard f["newPassword"] == f["confirmPassword"] else {
            return passwordPage(v, error: console.t(v, "password_mismatch"), status: .badRequest)
        }
        do {
            try await engine.console.changePassword(session, current: f["currentPassword"] ?? "", new: f["newPassword"] ?? "")
        } catch let e as CofferError {
            return passwordPage(v, error: console.message(e, v), status: e.kind.httpStatus)
        }
        throw WebFlow.redirect("/password?notice=notice_password_changed")
    }
}
