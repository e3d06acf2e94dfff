// The app's state over the generated bindings: what each screen shows, and the actions a screen
// calls. Plain Kotlin with coroutines and no Android import, so it is compiled and tested on the JVM
// in CI (ffi/tests/kotlin/ModelCheck.kt) against the real library and a real server. Every rule is
// in the Rust library; this only turns its answers into screen state.
package dev.tessera.app.model

import dev.tessera.core.Code
import dev.tessera.core.EnrollmentPreview
import dev.tessera.core.OneSwipeCode
import dev.tessera.core.OrganisationStep
import dev.tessera.core.PushListener
import dev.tessera.core.PushRequest
import dev.tessera.core.PushSubscription
import dev.tessera.core.Reply
import dev.tessera.core.TesseraException
import dev.tessera.core.TokenRow
import dev.tessera.core.Vault
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext

/** One row of the token list. */
data class TokenView(
    val id: String,
    val name: String,
    val group: String?,
    /** The code, grouped for reading ("123 456"); null when it is shown on request or needs the PIN. */
    val code: String?,
    val nextCode: String?,
    val secondsLeft: Int,
    val period: Int,
    val isPush: Boolean,
    val needsPin: Boolean,
) {
    /** How much of the code's time is left, 1 to 0, for the countdown ring. */
    val remaining: Float get() = if (period == 0) 0f else secondsLeft.toFloat() / period
}

/** What the main screen shows. */
sealed interface Screen {
    /** No vault yet: the first-run screen. */
    data object FirstRun : Screen

    /** The vault is locked (requests that wait are still listed in [TesseraModel.requests]). */
    data object Locked : Screen

    /** The token list, filtered by [query]. */
    data class Tokens(val tokens: List<TokenView>, val query: String) : Screen
}

/**
 * An enrollment link waiting for the user's confirmation: where it leads, and whether the second,
 * red warning about plain HTTP has been shown ([TesseraModel.confirmEnrollment] then enrolls anyway).
 */
data class PendingEnrollment(val link: String, val preview: EnrollmentPreview, val warned: Boolean)

/**
 * Where signing in to an organisation stands: what the sign-in sheet asks next. The app makes its
 * device key and the server enrols it: no QR code, nothing to copy.
 */
sealed interface OrganisationSignIn {
    /** Approve on a device the user already has, choosing [number]; the sheet waits meanwhile. */
    data class Approve(val message: String, val number: UByte?, val transactionId: String) : OrganisationSignIn

    /** Type the code just sent by text message or email. */
    data class EnterSentCode(val message: String, val transactionId: String) : OrganisationSignIn

    /** Type a passcode from a token the user already has. */
    data class EnterPasscode(val message: String) : OrganisationSignIn

    /** Signed in: this phone is one of the user's devices, its accounts [names]. */
    data class Done(val names: List<String>) : OrganisationSignIn
}

/** `123456` → `123 456`, `12345678` → `1234 5678`: codes are read aloud and typed in halves. */
fun groupCode(code: String): String =
    if (code.length < 6 || code.length % 2 != 0) code else code.substring(0, code.length / 2) + " " + code.substring(code.length / 2)

fun TokenRow.toView(): TokenView {
    val live = code as? Code.Live
    return TokenView(
        id = token.id,
        name = token.name,
        group = token.group,
        code = live?.let { groupCode(it.code) },
        nextCode = live?.let { groupCode(it.next) },
        secondsLeft = live?.secondsLeft?.toInt() ?: 0,
        period = live?.period?.toInt() ?: 0,
        isPush = token.pushServer != null,
        needsPin = code is Code.PinRequired,
    )
}

/**
 * The app's state. [io] runs the library's slow calls (Argon2 on unlock, file writes, the network);
 * the screens collect the flows on the main thread. It outlives the activity (the app keeps it in
 * a ViewModel), so a rotation neither locks the vault nor repeats an action.
 */
class TesseraModel(
    private val vault: Vault,
    private val deviceName: String,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : PushListener {
    private val screenState = MutableStateFlow<Screen>(if (vault.exists()) Screen.Locked else Screen.FirstRun)
    private val requestState = MutableStateFlow<List<PushRequest>>(emptyList())
    private val connectedState = MutableStateFlow(false)
    private val messageState = MutableStateFlow<String?>(null)
    private val answeringState = MutableStateFlow<String?>(null)
    private val pinState = MutableStateFlow(false)
    private val enrollmentState = MutableStateFlow<PendingEnrollment?>(null)
    private val signInState = MutableStateFlow<OrganisationSignIn?>(null)
    private var organisation: Pair<String, String>? = null
    private var subscription: PushSubscription? = null
    private var pendingLink: String? = null
    private var query = ""

    val screen: StateFlow<Screen> = screenState.asStateFlow()

    /** Login requests waiting for the user (the library's list): the approval screen shows the first. */
    val requests: StateFlow<List<PushRequest>> = requestState.asStateFlow()

    /** The request whose answer is on its way: the approval screen's buttons wait meanwhile. */
    val answering: StateFlow<String?> = answeringState.asStateFlow()

    /** Whether the vault asks for its answer PIN (answers and One Swipe then ask for it). */
    val hasPin: StateFlow<Boolean> = pinState.asStateFlow()

    /** An enrollment link waiting for confirmation: the enrollment dialog shows it. */
    val enrollment: StateFlow<PendingEnrollment?> = enrollmentState.asStateFlow()

    /** Signing in to an organisation: the sign-in sheet's step, null when none is under way. */
    val signIn: StateFlow<OrganisationSignIn?> = signInState.asStateFlow()

    /** Whether the push channel is open. */
    val connected: StateFlow<Boolean> = connectedState.asStateFlow()

    /** The last error or notice for a snackbar; [dismissMessage] clears it. */
    val message: StateFlow<String?> = messageState.asStateFlow()

    fun dismissMessage() {
        messageState.value = null
    }

    /** Creates the vault, unlocked by the key store and, when given, a passphrase. */
    suspend fun create(passphrase: String?): Boolean = work {
        vault.create(passphrase?.ifEmpty { null }, true)
        afterUnlock()
    } != null

    /** Unlocks by the key store, or by [passphrase] when the key store cannot. */
    suspend fun unlock(passphrase: String?): Boolean = work {
        vault.unlock(passphrase?.ifEmpty { null })
        afterUnlock()
    } != null

    /** Locks now (the activity calls it when the app leaves the screen). */
    fun lock() {
        vault.lock()
        enrollmentState.value = null
        screenState.value = Screen.Locked
    }

    /** Reloads the codes and the waiting requests (the list calls it every second while shown). */
    suspend fun refresh() {
        work { showTokens() }
    }

    suspend fun search(text: String) {
        query = text
        refresh()
    }

    /**
     * Adds what was scanned or pasted: a token; or, for an enrollment link, nothing yet: [enrollment]
     * then asks the user. Returns the names added, or null (with [message] set) when nothing was.
     */
    suspend fun add(text: String): List<String>? = work {
        val added = vault.addScanned(text)
        added.enrollment?.let { enrollmentState.value = PendingEnrollment(text, it, warned = false) }
        added.warnings.firstOrNull()?.let { messageState.value = it }
        showTokens()
        added.tokens.map { it.name }
    }

    /**
     * The user confirmed [enrollment]. For a server reached by plain HTTP on another computer the
     * first confirmation only shows the red warning (and returns null); the second enrolls. Returns
     * the names added, or null.
     */
    suspend fun confirmEnrollment(): List<String>? {
        val pending = enrollmentState.value ?: return null
        if (pending.preview.cleartext && !pending.warned) {
            enrollmentState.value = pending.copy(warned = true)
            return null
        }
        enrollmentState.value = null
        return work {
            val added = vault.enroll(pending.link, deviceName, pending.warned)
            added.warnings.firstOrNull()?.let { messageState.value = it }
            showTokens()
            added.tokens.map { it.name }
        }
    }

    /** The user declined [enrollment]: nothing was sent. */
    fun cancelEnrollment() {
        enrollmentState.value = null
    }

    /**
     * A link the app was opened with (a `tessera://enroll` or `otpauth://` link): added now, or at
     * the next unlock, once. An enrollment link only asks: nothing is sent until the user confirms.
     */
    suspend fun offerLink(link: String) {
        if (vault.isUnlocked()) add(link) else pendingLink = link
    }

    /**
     * Signs in to the organisation at [server] with the user's password and, when they have one, a
     * passcode or the help desk's registration code ([factor]); empty asks for an approval or a sent
     * code. Returns the next step ([signIn] shows it), or null with [message] set when refused.
     */
    suspend fun signInToOrganisation(server: String, username: String, password: String?, factor: String?): OrganisationSignIn? =
        work {
            organisation = server to username
            shown(vault.signInToOrganisation(server, username, password?.ifEmpty { null }, factor?.ifEmpty { null }, deviceName))
        }

    /**
     * Goes on with the sign-in [signIn] shows: waits for the approval, or sends the [code] that was
     * sent. Returns the next step, or null with [message] set.
     */
    suspend fun continueOrganisationSignIn(code: String?): OrganisationSignIn? {
        val (server, username) = organisation ?: return null
        val transactionId = when (val step = signInState.value) {
            is OrganisationSignIn.Approve -> step.transactionId
            is OrganisationSignIn.EnterSentCode -> step.transactionId
            else -> return null
        }
        return work {
            shown(vault.continueOrganisationSignIn(server, username, transactionId, code?.ifEmpty { null }, deviceName))
        }
    }

    /** The user closed the sign-in sheet. */
    fun cancelOrganisationSignIn() {
        signInState.value = null
        organisation = null
    }

    /** Takes a code to copy (an HOTP code advances its counter). */
    suspend fun takeCode(id: String): String? = work { vault.takeCode(id) }

    suspend fun remove(id: String): Boolean = work {
        vault.removeToken(id)
        showTokens()
    } != null

    /** A One Swipe code of push token [id] to show as a QR code. */
    suspend fun oneSwipe(id: String, pin: String?): OneSwipeCode? = work { vault.oneSwipe(id, pin?.ifEmpty { null }) }

    /** Sets or replaces the answer PIN ([current] is needed to replace one). */
    suspend fun setPin(current: String?, new: String): Boolean = work {
        vault.setAnswerPin(current?.ifEmpty { null }, new)
        pinState.value = vault.hasAnswerPin()
        showTokens()
    } != null

    /**
     * Answers a login request; returns the server's `approved` or `denied`, or null on error (the
     * request then stays on screen when it can be answered again). A tap while an answer is on
     * its way does nothing.
     */
    suspend fun answer(transactionId: String, reply: Reply, number: UInt?, pin: String?): String? {
        if (!answeringState.compareAndSet(null, transactionId)) return null
        try {
            return work { vault.answerPush(transactionId, reply, number, pin?.ifEmpty { null }) }
        } finally {
            answeringState.value = null
            requestState.value = vault.pendingRequests()
        }
    }

    override fun onRequest(request: PushRequest) {
        requestState.value = vault.pendingRequests()
    }

    override fun onConnectionChanged(connected: Boolean) {
        connectedState.value = connected
    }

    /** Stops listening (when the app is closed for good). */
    fun close() {
        subscription?.close()
        subscription = null
    }

    private suspend fun afterUnlock() {
        if (subscription == null) subscription = vault.listen(this)
        pinState.value = vault.hasAnswerPin()
        showTokens()
        pendingLink?.let { link ->
            pendingLink = null
            add(link)
        }
    }

    private fun shown(step: OrganisationStep): OrganisationSignIn {
        val next = when (step) {
            is OrganisationStep.Enrolled -> OrganisationSignIn.Done(step.added.tokens.map { it.name })
            is OrganisationStep.Approve -> OrganisationSignIn.Approve(step.message, step.number, step.transactionId)
            is OrganisationStep.EnterSentCode -> OrganisationSignIn.EnterSentCode(step.message, step.transactionId)
            is OrganisationStep.EnterPasscode -> OrganisationSignIn.EnterPasscode(step.message)
        }
        signInState.value = next
        if (next is OrganisationSignIn.Done) showTokens()
        return next
    }

    private fun showTokens() {
        val views = vault.tokens().map { it.toView() }
        val shown = if (query.isBlank()) views else views.filter { it.name.contains(query.trim(), ignoreCase = true) }
        screenState.value = Screen.Tokens(shown, query)
        requestState.value = vault.pendingRequests()
    }

    /** Runs [block] on [io]; a library error becomes [message] and null. */
    private suspend fun <T> work(block: suspend () -> T): T? = withContext(io) {
        try {
            block()
        } catch (e: TesseraException) {
            if (e is TesseraException.Locked && !vault.isUnlocked()) screenState.value = Screen.Locked
            messageState.value = reasonOf(e)
            null
        }
    }
}

/** The library's message for the user. */
fun reasonOf(error: TesseraException): String = when (error) {
    is TesseraException.Locked -> error.reason
    is TesseraException.NotFound -> error.reason
    is TesseraException.Conflict -> error.reason
    is TesseraException.InvalidInput -> error.reason
    is TesseraException.InvalidCode -> error.reason
    is TesseraException.Expired -> error.reason
    is TesseraException.AlreadyUsed -> error.reason
    is TesseraException.Denied -> error.reason
    is TesseraException.RateLimited -> error.reason
    is TesseraException.Crypto -> error.reason
    is TesseraException.Storage -> error.reason
    is TesseraException.Network -> error.reason
    is TesseraException.KeyStore -> error.reason
    is TesseraException.Internal -> error.reason
}
