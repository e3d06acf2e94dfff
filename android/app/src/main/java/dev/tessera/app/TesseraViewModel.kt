// Keeps the TesseraModel (and so the unlocked vault and the push listener) across activity
// re-creation (a rotation, a theme change), and tells the user about a login request with a
// notification while no screen of the app is shown.
package dev.tessera.app

import android.app.Application
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.core.app.NotificationManagerCompat
import androidx.core.content.ContextCompat
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import dev.tessera.app.model.TesseraModel
import dev.tessera.core.PushRequest
import dev.tessera.core.Vault
import kotlinx.coroutines.launch

class TesseraViewModel(application: Application) : AndroidViewModel(application) {
    val model = TesseraModel(
        Vault(application.filesDir.resolve("vault.tessera").path, AndroidKeyStore(application)),
        "${Build.MANUFACTURER} ${Build.MODEL}",
    )

    /** Set by the activity while it is on screen. */
    @Volatile
    var onScreen = false

    private val notified = HashSet<String>()

    init {
        viewModelScope.launch {
            model.requests.collect { requests ->
                requests.filter { notified.add(it.transactionId) && !onScreen }.forEach(::notify)
            }
        }
    }

    private fun notify(request: PushRequest) {
        val context = getApplication<Application>()
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU &&
            ContextCompat.checkSelfPermission(context, android.Manifest.permission.POST_NOTIFICATIONS) != PackageManager.PERMISSION_GRANTED
        ) return
        val manager = context.getSystemService(NotificationManager::class.java)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.O) {
            manager.createNotificationChannel(NotificationChannel(CHANNEL, "Login requests", NotificationManager.IMPORTANCE_HIGH))
        }
        val open = PendingIntent.getActivity(
            context, 0,
            Intent(context, MainActivity::class.java).addFlags(Intent.FLAG_ACTIVITY_SINGLE_TOP),
            PendingIntent.FLAG_IMMUTABLE,
        )
        val notification = NotificationCompat.Builder(context, CHANNEL)
            .setSmallIcon(android.R.drawable.ic_lock_idle_lock)
            .setContentTitle("Login request: ${request.service}")
            .setContentText("${request.username} is logging in. Open Tessera to approve or deny.")
            .setCategory(NotificationCompat.CATEGORY_CALL)
            .setPriority(NotificationCompat.PRIORITY_HIGH)
            .setVisibility(NotificationCompat.VISIBILITY_PRIVATE)
            .setTimeoutAfter((request.expiresAt.toLong() - System.currentTimeMillis() / 1000).coerceAtLeast(1) * 1000)
            .setContentIntent(open)
            .setAutoCancel(true)
            .build()
        NotificationManagerCompat.from(context).notify(request.transactionId.hashCode(), notification)
    }

    override fun onCleared() {
        model.close()
    }

    private companion object {
        const val CHANNEL = "login-requests"
    }
}
