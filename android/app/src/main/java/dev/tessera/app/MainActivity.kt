// The one activity: FLAG_SECURE (codes and One Swipe QR codes stay out of screenshots and the
// recents list), the vault locked whenever the app leaves the screen (not on a rotation: the
// model lives in a ViewModel), and tessera://enroll links handed to the model once each.
package dev.tessera.app

import android.content.Intent
import android.os.Bundle
import android.view.WindowManager
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.lifecycle.lifecycleScope
import dev.tessera.app.ui.TesseraApp
import kotlinx.coroutines.launch

class MainActivity : ComponentActivity() {
    private val holder: TesseraViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        if (savedInstanceState == null) offer(intent)
        setContent { TesseraApp(holder.model) }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        offer(intent)
    }

    override fun onStart() {
        super.onStart()
        holder.onScreen = true
    }

    override fun onStop() {
        super.onStop()
        holder.onScreen = false
        if (!isChangingConfigurations) holder.model.lock()
    }

    private fun offer(intent: Intent?) {
        val link = intent?.data?.toString() ?: return
        intent.data = null
        lifecycleScope.launch { holder.model.offerLink(link) }
    }
}
