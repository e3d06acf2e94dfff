// The app's state over the Swift bindings, as android/…/model/TesseraModel.kt is for Android:
// the screens read it and call one action each; every rule is in the Rust library. The library's
// slow calls (Argon2 on unlock, file writes, the network) run off the main actor.
import Foundation
import UIKit

struct TokenView: Identifiable, Equatable {
    let id: String
    let name: String
    let code: String?
    let nextCode: String?
    let secondsLeft: Int
    let period: Int
    let isPush: Bool
    let needsPin: Bool

    /// How much of the code's time is left, 1 to 0, for the countdown ring.
    var remaining: Double { period == 0 ? 0 : Double(secondsLeft) / Double(period) }
}

/// `123456` → `123 456`: codes are read and typed in halves.
func groupCode(_ code: String) -> String {
    guard code.count >= 6, code.count % 2 == 0 else { return code }
    let middle = code.index(code.startIndex, offsetBy: code.count / 2)
    return String(code[..<middle]) + " " + String(code[middle...])
}

extension TesseraError {
    /// The library's message for the user.
    var reason: String {
        switch self {
        case let .Locked(reason), let .NotFound(reason), let .Conflict(reason), let .InvalidInput(reason),
             let .InvalidCode(reason), let .Expired(reason), let .AlreadyUsed(reason), let .Denied(reason),
             let .RateLimited(reason), let .Crypto(reason), let .Storage(reason), let .Network(reason),
             let .KeyStore(reason), let .Internal(reason):
            return reason
        }
    }
}

/// An enrollment link waiting for the user's confirmation; `warned` once the red plain-HTTP warning showed.
struct PendingEnrollment: Identifiable, Equatable {
    let link: String
    let preview: EnrollmentPreview
    var warned: Bool
    var id: String { link }
}

/// Where signing in to an organisation stands: what the sign-in sheet asks next.
enum OrganisationSignIn: Equatable {
    /// Approve on a device the user already has (choosing `number`); the sheet waits meanwhile.
    case approve(message: String, number: UInt8?, transactionId: String)
    /// Type the code just sent by text message or email.
    case enterSentCode(message: String, transactionId: String)
    /// Type a passcode from a token the user already has.
    case enterPasscode(message: String)
    /// Signed in: this phone is one of the user's devices.
    case done(names: [String])
}

@MainActor
final class AppModel: ObservableObject, PushListener {
    enum Screen: Equatable { case firstRun, locked, tokens }

    @Published private(set) var screen: Screen
    @Published private(set) var tokens: [TokenView] = []
    @Published private(set) var requests: [PushRequest] = []
    /// The request whose answer is on its way: the approval sheet's buttons wait meanwhile.
    @Published private(set) var answering: String?
    @Published private(set) var hasPin = false
    /// An enrollment link waiting for confirmation: the enrollment sheet shows it.
    @Published private(set) var enrollment: PendingEnrollment?
    /// Signing in to an organisation: the sign-in sheet's step, nil when none is under way.
    @Published private(set) var signIn: OrganisationSignIn?
    @Published var message: String?
    @Published var query = ""

    private let vault: Vault
    private var subscription: PushSubscription?
    private var pendingLink: String?
    private var organisation: (server: String, username: String)?

    init() {
        let directory = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        vault = Vault(path: directory.appendingPathComponent("vault.tessera").path, keyStore: KeychainStore())
        screen = vault.exists() ? .locked : .firstRun
    }

    func create(passphrase: String) async {
        let vault = vault
        await run { try await Self.background { try vault.create(passphrase: passphrase.isEmpty ? nil : passphrase, useKeyStore: true) } }
        await afterUnlock()
    }

    func unlock(passphrase: String) async {
        let vault = vault
        await run { try await Self.background { try vault.unlock(passphrase: passphrase.isEmpty ? nil : passphrase) } }
        await afterUnlock()
    }

    func lock() {
        vault.lock()
        enrollment = nil
        screen = .locked
    }

    func refresh() {
        guard screen == .tokens else { return }
        do { try showTokens() } catch { report(error) }
    }

    /// Adds what was scanned or pasted: a token; for an enrollment link, nothing yet: [enrollment]
    /// asks the user first.
    func add(_ text: String) async -> Bool {
        let vault = vault
        return await run {
            let added = try vault.addScanned(text: text)
            if let preview = added.enrollment { self.enrollment = PendingEnrollment(link: text, preview: preview, warned: false) }
            if let warning = added.warnings.first { self.message = warning }
            try self.showTokens()
        }
    }

    /// The user confirmed [enrollment]: a plain-HTTP server first gets the red warning, then enrolls.
    func confirmEnrollment() async {
        guard var pending = enrollment else { return }
        if pending.preview.cleartext && !pending.warned {
            pending.warned = true
            enrollment = pending
            return
        }
        enrollment = nil
        let (vault, name) = (vault, UIDevice.current.name)
        _ = await run {
            let added = try await vault.enroll(link: pending.link, deviceName: name, acceptCleartext: pending.warned)
            if let warning = added.warnings.first { self.message = warning }
            try self.showTokens()
        }
    }

    /// The user declined [enrollment]: nothing was sent.
    func cancelEnrollment() {
        enrollment = nil
    }

    /// A link the app was opened with: added now, or at the next unlock, once.
    func offer(_ link: String) async {
        if vault.isUnlocked() { _ = await add(link) } else { pendingLink = link }
    }

    /// Signs in to the organisation at `server` with the password and, when given, a passcode or the
    /// help desk's registration code (`factor`); empty asks for an approval or a sent code.
    func signInToOrganisation(server: String, username: String, password: String, factor: String) async {
        organisation = (server, username)
        let (vault, name) = (vault, UIDevice.current.name)
        await run {
            let (typedPassword, typedFactor) = (password.isEmpty ? nil : password, factor.isEmpty ? nil : factor)
            let step = try await vault.signInToOrganisation(server: server, username: username, password: typedPassword, factor: typedFactor, deviceName: name)
            try self.show(step)
        }
    }

    /// Goes on with the sign-in `signIn` shows: waits for the approval, or sends the `code` that was sent.
    func continueOrganisationSignIn(code: String?) async {
        guard let (server, username) = organisation else { return }
        let transactionId: String
        switch signIn {
        case let .approve(_, _, id), let .enterSentCode(_, id): transactionId = id
        default: return
        }
        let (vault, name) = (vault, UIDevice.current.name)
        await run {
            let typed = code?.isEmpty == false ? code : nil
            let step = try await vault.continueOrganisationSignIn(server: server, username: username, transactionId: transactionId, code: typed, deviceName: name)
            try self.show(step)
        }
    }

    /// The user closed the sign-in sheet.
    func cancelOrganisationSignIn() {
        signIn = nil
        organisation = nil
    }

    func copy(_ id: String) async {
        let vault = vault
        await run {
            let code = try await Self.background { try vault.takeCode(id: id) }
            UIPasteboard.general.setItems([[UIPasteboard.typeAutomatic: code]], options: [.localOnly: true, .expirationDate: Date().addingTimeInterval(30)])
            try self.showTokens()
        }
    }

    func oneSwipe(_ id: String, pin: String?) async -> OneSwipeCode? {
        let vault = vault
        var code: OneSwipeCode?
        await run { code = try await Self.background { try vault.oneSwipe(id: id, pin: pin) } }
        return code
    }

    /// Sets or replaces the answer PIN (`current` is needed to replace one).
    func setPin(current: String?, new: String) async -> Bool {
        let vault = vault
        return await run {
            try await Self.background { try vault.setAnswerPin(current: current, new: new) }
            self.hasPin = try vault.hasAnswerPin()
            try self.showTokens()
        }
    }

    /// Answers a login request; a tap while an answer is on its way does nothing. After an error
    /// the request stays when it can be answered again (the library's list decides).
    func answer(_ request: PushRequest, _ reply: Reply, number: UInt32?, pin: String?) async {
        guard answering == nil else { return }
        answering = request.transactionId
        await run { _ = try await self.vault.answerPush(transactionId: request.transactionId, reply: reply, number: number, pin: pin) }
        answering = nil
        requests = vault.pendingRequests()
    }

    nonisolated func onRequest(request: PushRequest) throws {
        Task { @MainActor in self.requests = self.vault.pendingRequests() }
    }

    nonisolated func onConnectionChanged(connected: Bool) throws {}

    private func afterUnlock() async {
        guard vault.isUnlocked() else { return }
        do {
            // Once: the library reopens the channels itself after enrolling or removing a device.
            if subscription == nil { subscription = try vault.listen(listener: self) }
            hasPin = try vault.hasAnswerPin()
            try showTokens()
        } catch { report(error) }
        if let link = pendingLink {
            pendingLink = nil
            _ = await add(link)
        }
    }

    private func show(_ step: OrganisationStep) throws {
        switch step {
        case let .enrolled(added):
            signIn = .done(names: added.tokens.map(\.name))
            try showTokens()
        case let .approve(message, number, transactionId):
            signIn = .approve(message: message, number: number, transactionId: transactionId)
        case let .enterSentCode(message, transactionId):
            signIn = .enterSentCode(message: message, transactionId: transactionId)
        case let .enterPasscode(message):
            signIn = .enterPasscode(message: message)
        }
    }

    private func showTokens() throws {
        let rows = try vault.tokens().map { row -> TokenView in
            let isPush = row.token.pushServer != nil
            switch row.code {
            case let .live(code, next, period, secondsLeft):
                return TokenView(id: row.token.id, name: row.token.name, code: groupCode(code), nextCode: groupCode(next), secondsLeft: Int(secondsLeft), period: Int(period), isPush: isPush, needsPin: false)
            case .onRequest:
                return TokenView(id: row.token.id, name: row.token.name, code: nil, nextCode: nil, secondsLeft: 0, period: 0, isPush: isPush, needsPin: false)
            case .pinRequired:
                return TokenView(id: row.token.id, name: row.token.name, code: nil, nextCode: nil, secondsLeft: 0, period: 0, isPush: isPush, needsPin: true)
            }
        }
        tokens = query.isEmpty ? rows : rows.filter { $0.name.localizedCaseInsensitiveContains(query) }
        requests = vault.pendingRequests()
        screen = .tokens
    }

    /// Runs a blocking library call on a background thread.
    private nonisolated static func background<T: Sendable>(_ call: @escaping @Sendable () throws -> T) async throws -> T {
        try await Task.detached(priority: .userInitiated) { try call() }.value
    }

    @discardableResult
    private func run(_ action: () async throws -> Void) async -> Bool {
        do {
            try await action()
            return true
        } catch {
            report(error)
            return false
        }
    }

    private func report(_ error: Error) {
        message = (error as? TesseraError)?.reason ?? error.localizedDescription
        if !vault.isUnlocked() { screen = vault.exists() ? .locked : .firstRun }
    }
}
