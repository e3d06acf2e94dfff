// Copying a code: marked sensitive (Android 13+ keeps it out of the clipboard preview and
// keyboard suggestions) and cleared after 30 s if the clipboard still holds it.
package dev.tessera.app.ui

import android.content.ClipData
import android.content.ClipDescription
import android.content.ClipboardManager
import android.content.Context
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.os.PersistableBundle

/** Seconds a copied code stays in the clipboard. */
const val CLEAR_CLIPBOARD_AFTER_SECONDS = 30L

fun copySensitive(context: Context, code: String) {
    val clipboard = context.getSystemService(ClipboardManager::class.java)
    val clip = ClipData.newPlainText("Tessera code", code)
    clip.description.extras = PersistableBundle().apply {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            putBoolean(ClipDescription.EXTRA_IS_SENSITIVE, true)
        } else {
            putBoolean("android.content.extra.IS_SENSITIVE", true)
        }
    }
    var replaced = false
    val watch = ClipboardManager.OnPrimaryClipChangedListener { replaced = true }
    clipboard.setPrimaryClip(clip)
    clipboard.addPrimaryClipChangedListener(watch)
    Handler(Looper.getMainLooper()).postDelayed({
        clipboard.removePrimaryClipChangedListener(watch)
        // In the background Android 10+ hides the clipboard from the app (null): then only a change
        // seen since the copy tells that the user copied something else.
        val held = clipboard.primaryClip?.takeIf { it.itemCount > 0 }?.getItemAt(0)?.text?.toString()
        if (held == code || (held == null && !replaced)) {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) clipboard.clearPrimaryClip()
            else clipboard.setPrimaryClip(ClipData.newPlainText("", ""))
        }
    }, CLEAR_CLIPBOARD_AFTER_SECONDS * 1000)
}
