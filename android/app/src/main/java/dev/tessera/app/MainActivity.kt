// The one activity: FLAG_SECURE (codes and One Swipe QR codes stay out of screenshots and the
// recents list), the vault in app-private storage, locked whenever the app leaves the screen.
package dev.tessera.app

import android.os.Build
import android.os.Bundle
import android.view.WindowManager
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import dev.tessera.app.model.TesseraModel
import dev.tessera.app.ui.TesseraApp
import dev.tessera.core.Vault

class MainActivity : ComponentActivity() {
    private lateinit var model: TesseraModel

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        val vault = Vault(filesDir.resolve("vault.tessera").path, AndroidKeyStore(applicationContext))
        model = TesseraModel(vault, "${Build.MANUFACTURER} ${Build.MODEL}")
        val link = intent?.data?.toString()
        setContent { TesseraApp(model, pendingLink = link) }
    }

    override fun onStop() {
        super.onStop()
        model.lock()
    }

    override fun onDestroy() {
        model.close()
        super.onDestroy()
    }
}
