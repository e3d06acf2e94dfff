// The app's state over the Swift bindings, as android/…/model/TesseraModel.kt is for Android:
// the screens read it and call one action each; every rule is in the Rust library.
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
}

/// `123456` → `123 456`: codes are read and typed in halves.
func groupCode(_ code: String) -> String {
    guard code.count >= 6, code.count % 2 == 0 else { return code }
    let middle = code.index(code.startIndex, offsetBy: code.count / 2)
    return String(code[..<middle]) + " " + String(code[middle...])
}

@MainActor
final class AppModel: ObservableObject, PushListener {
    enum Screen: Equatable { case firstRun, locked, tokens }

    @Published private(set) var screen: Screen
    @Published private(set) var tokens: [TokenView] = []
    @Published private(set) var requests: [PushRequest] = []
    @Published var message: String?
    @Published var query = ""

    private let vault: Vault
    private var subscription: PushSubscription?

    init() {
        let directory = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        vault = Vault(path: directory.appendingPathComponent("vault.tessera").path, keyStore: KeychainStore())
        screen = vault.exists() ? .locked : .firstRun
    }

    func create(passphrase: String) async { await run { try self.vault.create(passphrase: passphrase.isEmpty ? nil : passphrase, useKeyStore: true); self.afterUnlock() } }
    func unlock(passphrase: String) async { await run { try self.vault.unlock(passphrase: passphrase.isEmpty ? nil : passphrase); self.afterUnlock() } }

    func lock() {
        vault.lock()
        screen = .locked
    }

    func refresh() {
        guard screen == .tokens else { return }
        do { try showTokens() } catch { report(error) }
    }

    func add(_ text: String) async -> Bool {
        await run {
            switch try parseScanned(text: text) {
            case .token: _ = try self.vault.addUri(uri: text, group: nil)
            case .enrollment:
                _ = try await self.vault.enroll(link: text, deviceName: UIDevice.current.name)
                try self.listen()
            case .other: throw TesseraError.InvalidInput(reason: "this QR code holds no token and no enrollment link")
            }
            try self.showTokens()
        }
    }

    func copy(_ id: String) async {
        await run { UIPasteboard.general.setItems([[UIPasteboard.typeAutomatic: try self.vault.takeCode(id: id)]], options: [.expirationDate: Date().addingTimeInterval(30)]) }
    }

    func oneSwipe(_ id: String) async -> OneSwipeCode? {
        var code: OneSwipeCode?
        await run { code = try self.vault.oneSwipe(id: id, pin: nil) }
        return code
    }

    func answer(_ request: PushRequest, _ reply: Reply, number: UInt32?) async {
        await run { _ = try await self.vault.answerPush(transactionId: request.transactionId, reply: reply, number: number, pin: nil) }
        requests.removeAll { $0.transactionId == request.transactionId }
    }

    nonisolated func onRequest(request: PushRequest) throws {
        Task { @MainActor in self.requests.append(request) }
    }

    nonisolated func onConnectionChanged(connected: Bool) throws {}

    private func afterUnlock() {
        do {
            try showTokens()
            if subscription == nil { try listen() }
        } catch { report(error) }
    }

    private func listen() throws {
        subscription = try tokens.contains(where: \.isPush) ? vault.listen(listener: self) : nil
    }

    private func showTokens() throws {
        let rows = try vault.tokens().map { row -> TokenView in
            if case let .live(code, next, period, secondsLeft) = row.code {
                return TokenView(id: row.token.id, name: row.token.name, code: groupCode(code), nextCode: groupCode(next), secondsLeft: Int(secondsLeft), period: Int(period), isPush: row.token.pushServer != nil)
            }
            return TokenView(id: row.token.id, name: row.token.name, code: nil, nextCode: nil, secondsLeft: 0, period: 0, isPush: row.token.pushServer != nil)
        }
        tokens = query.isEmpty ? rows : rows.filter { $0.name.localizedCaseInsensitiveContains(query) }
        screen = .tokens
    }

    @discardableResult
    private func run(_ action: @escaping () async throws -> Void) async -> Bool {
        do {
            try await action()
            return true
        } catch {
            report(error)
            return false
        }
    }

    private func report(_ error: Error) {
        message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
        if !vault.isUnlocked() { screen = vault.exists() ? .locked : .firstRun }
    }
}
