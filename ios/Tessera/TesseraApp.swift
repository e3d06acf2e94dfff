// The SwiftUI app: first run and unlock, the token list with live codes and countdowns, scanning
// with AVFoundation, the push approval with number matching (and the answer PIN when set), One
// Swipe, and setting the answer PIN. Codes are covered whenever the app is not active (the app
// switcher's snapshot) and the vault locks when the app goes to the background.
import SwiftUI

@main
struct TesseraApp: App {
    @StateObject private var model = AppModel()
    @Environment(\.scenePhase) private var phase

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .onOpenURL { url in Task { await model.offer(url.absoluteString) } }
        }
        .onChange(of: phase) { newPhase in
            // Not on .inactive: the camera permission prompt and Control Center pass through it.
            if newPhase == .background { model.lock() }
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
        .sheet(item: Binding(get: { model.screen == .tokens ? model.enrollment : nil }, set: { if $0 == nil { model.cancelEnrollment() } })) { pending in
            EnrollView(pending: pending)
        }
        .alert(model.message ?? "", isPresented: Binding(get: { model.message != nil }, set: { if !$0 { model.message = nil } })) {}
    }
}

/// Where an enrollment link leads, asked before anything is sent; plain HTTP gets a second, red step.
struct EnrollView: View {
    @EnvironmentObject var model: AppModel
    let pending: PendingEnrollment

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    Text("This phone will approve logins for this account. Enroll only if you asked for it.")
                    LabeledContent("Server", value: pending.preview.host)
                    LabeledContent("Organization", value: pending.preview.issuer ?? "(not named)")
                    LabeledContent("Account", value: pending.preview.account ?? "(not named)")
                }
                if pending.warned {
                    Section {
                        Text("Not secure. \(pending.preview.server) is reached by plain HTTP. Anyone on this network can read this enrollment and take over this push device.")
                            .foregroundStyle(.red).bold()
                    }
                }
                Section {
                    Button(pending.warned ? "Enroll over HTTP anyway" : (pending.preview.cleartext ? "Continue" : "Enroll"), role: pending.warned ? .destructive : nil) {
                        Task { await model.confirmEnrollment() }
                    }
                    Button("Cancel", role: .cancel) { model.cancelEnrollment() }
                }
            }
            .navigationTitle("Enroll as a push device?")
        }
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
    @State private var settingPin = false
    @State private var signingIn = false
    @State private var swipeFor: String?
    @State private var swipe: OneSwipeCode?
    private let tick = Timer.publish(every: 1, on: .main, in: .common).autoconnect()

    var body: some View {
        NavigationStack {
            List(model.tokens) { token in
                HStack {
                    VStack(alignment: .leading) {
                        Text(token.name).font(.headline)
                        Text(token.code ?? (token.needsPin ? "PIN needed" : "Tap for a code")).font(.system(.title, design: .monospaced))
                    }
                    Spacer()
                    if token.period > 0 { CountdownRing(remaining: token.remaining) }
                    if token.isPush {
                        Button("One Swipe") {
                            if model.hasPin { swipeFor = token.id } else { Task { swipe = await model.oneSwipe(token.id, pin: nil) } }
                        }
                    }
                }
                .contentShape(Rectangle())
                .onTapGesture { Task { await model.copy(token.id) } }
                .contextMenu { if let next = token.nextCode { Text("Next: \(next)") } }
            }
            .overlay {
                if model.tokens.isEmpty && model.query.isEmpty {
                    Button("Sign in to your organisation") { signingIn = true }.buttonStyle(.borderedProminent)
                }
            }
            .searchable(text: $model.query)
            .onChange(of: model.query) { _ in model.refresh() }
            .toolbar {
                Button("PIN") { settingPin = true }
                Button("Scan") { scanning = true }
            }
            .navigationTitle("Tessera")
        }
        .onReceive(tick) { _ in model.refresh() }
        .sheet(isPresented: $scanning) {
            ScannerView { text in Task { if await model.add(text) { scanning = false } } }
        }
        .sheet(item: $swipe) { code in OneSwipeView(code: code) }
        .sheet(isPresented: Binding(get: { swipeFor != nil }, set: { if !$0 { swipeFor = nil } })) {
            PinSheet(title: "One Swipe") { pin in
                guard let id = swipeFor else { return }
                if let code = await model.oneSwipe(id, pin: pin) {
                    swipeFor = nil
                    swipe = code
                }
            }
        }
        .sheet(isPresented: $settingPin) { SetPinSheet { settingPin = false } }
        .sheet(isPresented: $signingIn, onDismiss: { model.cancelOrganisationSignIn() }) {
            SignInSheet { signingIn = false }
        }
    }
}

/// Signing in to the organisation: the server's address, username, password and a passcode or
/// registration code; then what the server asks next (an approval on another device, a sent code).
struct SignInSheet: View {
    @EnvironmentObject var model: AppModel
    let done: () -> Void
    @State private var server = "https://"
    @State private var username = ""
    @State private var password = ""
    @State private var factor = ""

    var body: some View {
        Form {
            switch model.signIn {
            case nil, .enterPasscode:
                Section("Sign in to your organisation") {
                    if case let .enterPasscode(message) = model.signIn { Text(message) }
                    TextField("Server address", text: $server).keyboardType(.URL).textInputAutocapitalization(.never)
                    TextField("Username", text: $username).textInputAutocapitalization(.never)
                    SecureField("Password", text: $password)
                    TextField("Passcode or registration code (empty: approve or get a code)", text: $factor)
                    Button("Sign in") {
                        Task { await model.signInToOrganisation(server: server, username: username, password: password, factor: factor) }
                    }.disabled(username.isEmpty)
                }
            case let .approve(message, number, _):
                Section {
                    Text(message)
                    if let number { Text("\(number)").font(.system(size: 48, weight: .bold)) }
                    ProgressView()
                }
                .task { await model.continueOrganisationSignIn(code: nil) }
            case let .enterSentCode(message, _):
                Section {
                    Text(message)
                    TextField("Code", text: $factor).keyboardType(.numberPad)
                    Button("Continue") { Task { await model.continueOrganisationSignIn(code: factor) } }.disabled(factor.isEmpty)
                }
            case let .done(names):
                Section {
                    Text("Signed in: \(names.joined(separator: ", ")) is ready on this iPhone.")
                    Button("Done") { done() }
                }
            }
        }
    }
}

/// The share of a code's time left, as a ring.
struct CountdownRing: View {
    let remaining: Double

    var body: some View {
        ZStack {
            Circle().stroke(Color.secondary.opacity(0.25), lineWidth: 4)
            Circle().trim(from: 0, to: remaining).stroke(remaining < 0.2 ? Color.orange : Color.accentColor, lineWidth: 4)
                .rotationEffect(.degrees(-90))
        }
        .frame(width: 28, height: 28)
        .accessibilityLabel("\(Int(remaining * 100)) percent of the code's time left")
    }
}

struct PinSheet: View {
    let title: String
    let onPin: (String) async -> Void
    @State private var pin = ""

    var body: some View {
        Form {
            Section(title) {
                SecureField("Your answer PIN", text: $pin).keyboardType(.numberPad)
                Button("OK") { Task { await onPin(pin) } }.disabled(pin.isEmpty)
            }
        }
    }
}

struct SetPinSheet: View {
    @EnvironmentObject var model: AppModel
    let done: () -> Void
    @State private var current = ""
    @State private var new = ""

    var body: some View {
        Form {
            Section(model.hasPin ? "Change the answer PIN" : "Set an answer PIN") {
                Text("Asked before approving a login and before One Swipe. Ten wrong PINs in a row remove this iPhone's push devices.")
                if model.hasPin { SecureField("Current PIN", text: $current).keyboardType(.numberPad) }
                SecureField("New PIN (4 or more characters)", text: $new).keyboardType(.numberPad)
                Button("Save") {
                    Task { if await model.setPin(current: current.isEmpty ? nil : current, new: new) { done() } }
                }.disabled(new.isEmpty)
            }
        }
    }
}

extension OneSwipeCode: Identifiable {
    public var id: String { payload }
}

struct ApprovalView: View {
    @EnvironmentObject var model: AppModel
    let request: PushRequest
    @State private var typed = ""
    @State private var pin = ""
    @State private var now = Date()
    private let tick = Timer.publish(every: 0.5, on: .main, in: .common).autoconnect()

    var body: some View {
        let idle = model.answering == nil
        let approvable = idle && (!model.hasPin || !pin.isEmpty)
        let left = max(Int(request.expiresAt) - Int(now.timeIntervalSince1970), 0)
        VStack(spacing: 16) {
            Text("Log in to \(request.service)?").font(.title2)
            Text("\(request.username) from \(request.clientIp ?? "an unknown address")")
            if let agent = request.userAgent { Text(agent).font(.footnote) }
            Text("\(left) s left").font(.footnote).monospacedDigit()
            if model.hasPin { SecureField("Your answer PIN", text: $pin).keyboardType(.numberPad).textFieldStyle(.roundedBorder) }
            switch request.numberMatching {
            case .pick:
                Text("Tap the number the login screen shows")
                HStack {
                    ForEach(request.numberChoices, id: \.self) { number in
                        Button("\(number)") { approve(number) }.buttonStyle(.borderedProminent).disabled(!approvable)
                    }
                }
            case .type:
                TextField("Number on the login screen", text: $typed).keyboardType(.numberPad)
                Button("Approve") { approve(UInt32(typed)) }.disabled(!approvable)
            case .off:
                Button("Approve") { approve(nil) }.disabled(!approvable)
            }
            Button("Deny", role: .cancel) { Task { await model.answer(request, .deny, number: nil, pin: nil) } }.disabled(!idle)
            Button("It wasn't me", role: .destructive) { Task { await model.answer(request, .notMe, number: nil, pin: nil) } }.disabled(!idle)
        }
        .padding()
        .interactiveDismissDisabled()
        .onReceive(tick) { now = $0 }
    }

    private func approve(_ number: UInt32?) {
        Task { await model.answer(request, .approve, number: number, pin: pin.isEmpty ? nil : pin) }
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
