// The library's KeyStore over the iOS Keychain: generic passwords of this app, readable only
// after the first unlock of the device and never moved to another device or a backup.
import Foundation
import Security

final class KeychainStore: KeyStore, @unchecked Sendable {
    private let service = "dev.tessera.vault"

    func load(account: String) throws -> Data? {
        var query = base(account)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        try check(status, "read")
        return item as? Data
    }

    func store(account: String, secret: Data) throws {
        SecItemDelete(base(account) as CFDictionary)
        var item = base(account)
        item[kSecValueData as String] = secret
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        try check(SecItemAdd(item as CFDictionary, nil), "save")
    }

    func delete(account: String) throws {
        let status = SecItemDelete(base(account) as CFDictionary)
        if status != errSecItemNotFound { try check(status, "delete") }
    }

    private func base(_ account: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service, kSecAttrAccount as String: account]
    }

    private func check(_ status: OSStatus, _ action: String) throws {
        guard status == errSecSuccess else {
            let text = SecCopyErrorMessageString(status, nil) as String? ?? "status \(status)"
            throw TesseraError.KeyStore(reason: "the Keychain could not \(action) the key: \(text)")
        }
    }
}
