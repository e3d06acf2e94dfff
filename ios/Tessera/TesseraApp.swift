// The SwiftUI app: first run and unlock, the token list with live codes and countdowns, scanning
// with AVFoundation, the push approval with number matching, and One Swipe. Codes are hidden from
// the app switcher's snapshot and the vault locks when the app leaves the screen.
import SwiftUI

@main
struct TesseraApp: App {
    @StateObject private var model = AppModel()
    @Environment(\.scenePhase) private var phase

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .onOpenURL { url in Task { await model.add(url.absoluteString) } }
        }
        .onChange(of: phase) { newPhase in
            if newPhase != .active { model.lock() }
        }
    }
}

struct RootView: View {
    @EnvironmentObject var model: AppModel
    @Environment(\.scenePhase) private var phase

    var body: some View {
        ZStack {
            switch model.screen {
            case .firstRun: PassphraseView(creating: true)
            case .locked: PassphraseView(creating: false)
            case .tokens: TokenListView()
            }
            if phase != .active { Color(.systemBackground).ignoresSafeArea() }
        }
        .sheet(item: Binding(get: { model.screen == .tokens ? model.requests.first : nil }, set: { _ in })) { request in
            ApprovalView(request: request)
        }
        .alert(model.message ?? "", isPresented: Binding(get: { model.message != nil }, set: { if !$0 { model.message = nil } })) {}
    }
}

extension PushRequest: Identifiable {
    public var id: String { transactionId }
}

struct PassphraseView: View {
    @EnvironmentObject var model: AppModel
    let creating: Bool
    @State private var passphrase = ""

    var body: some View {
        Form {
            Section(creating ? "Create your vault" : "Tessera is locked") {
                if !creating && !model.requests.isEmpty { Text("A login request is waiting: unlock to answer it.") }
                SecureField(creating ? "Passphrase (optional, 12+ characters)" : "Passphrase", text: $passphrase)
                Button(creating ? "Create" : "Unlock") {
                    let text = passphrase
                    passphrase = ""
                    Task { creating ? await model.create(passphrase: text) : await model.unlock(passphrase: text) }
                }
            }
        }
    }
}

struct TokenListView: View {
    @EnvironmentObject var model: AppModel
    @State private var scanning = false
    @State private var swipe: OneSwipeCode?
    private let tick = Timer.publish(every: 1, on: .main, in: .common).autoconnect()

    var body: some View {
        NavigationStack {
            List(model.tokens) { token in
                HStack {
                    VStack(alignment: .leading) {
                        Text(token.name).font(.headline)
                        Text(token.code ?? "Tap for a code").font(.system(.title, design: .monospaced))
                    }
                    Spacer()
                    if token.period > 0 {
                        ProgressView(value: Double(token.secondsLeft), total: Double(token.period)).progressViewStyle(.circular)
                    }
                    if token.isPush { Button("One Swipe") { Task { swipe = await model.oneSwipe(token.id) } } }
                }
                .contentShape(Rectangle())
                .onTapGesture { Task { await model.copy(token.id) } }
                .contextMenu { if let next = token.nextCode { Text("Next: \(next)") } }
            }
            .searchable(text: $model.query)
            .onChange(of: model.query) { _ in model.refresh() }
            .toolbar { Button("Scan") { scanning = true } }
            .navigationTitle("Tessera")
        }
        .onReceive(tick) { _ in model.refresh() }
        .sheet(isPresented: $scanning) {
            ScannerView { text in Task { if await model.add(text) { scanning = false } } }
        }
        .sheet(item: $swipe) { code in OneSwipeView(code: code) }
    }
}

extension OneSwipeCode: Identifiable {
    public var id: String { payload }
}

struct ApprovalView: View {
    @EnvironmentObject var model: AppModel
    let request: PushRequest
    @State private var typed = ""

    var body: some View {
        VStack(spacing: 16) {
            Text("Log in to \(request.service)?").font(.title2)
            Text("\(request.username) from \(request.clientIp ?? "an unknown address")")
            if let agent = request.userAgent { Text(agent).font(.footnote) }
            switch request.numberMatching {
            case .pick:
                HStack {
                    ForEach(request.numberChoices, id: \.self) { number in
                        Button("\(number)") { Task { await model.answer(request, .approve, number: number) } }.buttonStyle(.borderedProminent)
                    }
                }
            case .type:
                TextField("Number on the login screen", text: $typed).keyboardType(.numberPad)
                Button("Approve") { Task { await model.answer(request, .approve, number: UInt32(typed)) } }
            case .off:
                Button("Approve") { Task { await model.answer(request, .approve, number: nil) } }
            }
            Button("Deny", role: .cancel) { Task { await model.answer(request, .deny, number: nil) } }
            Button("It wasn't me", role: .destructive) { Task { await model.answer(request, .notMe, number: nil) } }
        }
        .padding()
        .interactiveDismissDisabled()
    }
}

struct OneSwipeView: View {
    let code: OneSwipeCode
    @Environment(\.dismiss) private var dismiss
    @State private var now = Date()
    private let tick = Timer.publish(every: 0.25, on: .main, in: .common).autoconnect()

    var body: some View {
        let left = Int(code.expiresAt) - Int(now.timeIntervalSince1970)
        VStack {
            Text("One Swipe: \(code.tokenName)").font(.headline)
            if let png = try? qrPng(text: code.payload, modulePx: 8), let image = UIImage(data: png) {
                Image(uiImage: image).interpolation(.none).resizable().scaledToFit()
            }
            Text("Show it to the login screen's camera. \(max(left, 0)) s left.")
        }
        .padding()
        .onReceive(tick) { date in
            now = date
            if left <= 0 { dismiss() }
        }
    }
}
