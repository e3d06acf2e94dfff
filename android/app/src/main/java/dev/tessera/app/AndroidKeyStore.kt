// The library's KeyStore over the Android Keystore. The Keystore holds keys, not arbitrary bytes:
// each secret is sealed with a non-exportable AES-256-GCM key that lives in the Keystore (in the
// TEE or StrongBox where the phone has one) and the sealed bytes are kept in app-private
// preferences. A failure is thrown as TesseraException.KeyStore, which the vault call reports.
package dev.tessera.app

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import android.util.Base64
import dev.tessera.core.KeyStore
import dev.tessera.core.TesseraException
import java.security.GeneralSecurityException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

class AndroidKeyStore(context: Context) : KeyStore {
    private val prefs = context.getSharedPreferences("tessera-keystore", Context.MODE_PRIVATE)
    private val hasStrongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    override fun load(account: String): ByteArray? = guarded {
        val sealed = prefs.getString(account, null) ?: return@guarded null
        val bytes = Base64.decode(sealed, Base64.NO_WRAP)
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(128, bytes, 0, IV_BYTES))
        cipher.doFinal(bytes, IV_BYTES, bytes.size - IV_BYTES)
    }

    override fun store(account: String, secret: ByteArray) = guarded {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey())
        val sealed = cipher.iv + cipher.doFinal(secret)
        secret.fill(0)
        check(prefs.edit().putString(account, Base64.encodeToString(sealed, Base64.NO_WRAP)).commit()) { "the key could not be saved" }
    }

    override fun delete(account: String) = guarded {
        check(prefs.edit().remove(account).commit()) { "the key could not be deleted" }
    }

    private fun wrappingKey(): SecretKey {
        val keystore = java.security.KeyStore.getInstance(PROVIDER).apply { load(null) }
        (keystore.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P && hasStrongBox) {
            try {
                return generate(strongBox = true)
            } catch (e: StrongBoxUnavailableException) {
                // Advertised but unusable: the TEE-backed key below.
            }
        }
        return generate(strongBox = false)
    }

    private fun generate(strongBox: Boolean): SecretKey {
        val spec = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
        if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) spec.setIsStrongBoxBacked(true)
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER)
        generator.init(spec.build())
        return generator.generateKey()
    }

    private fun <T> guarded(block: () -> T): T =
        try {
            block()
        } catch (e: GeneralSecurityException) {
            throw TesseraException.KeyStore("the Android Keystore failed: ${e.javaClass.simpleName}")
        } catch (e: IllegalStateException) {
            throw TesseraException.KeyStore(e.message ?: "the Android Keystore failed")
        }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val ALIAS = "tessera-vault-slot"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
    }
}
