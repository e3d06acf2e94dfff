// The generated Kotlin bindings on the JVM, against the real library and a real tessera-server:
// every export of tessera-ffi is called at least once. Run by tests/it/ffi.rs, which starts the
// server and passes TESSERA_TEST_DIR, TESSERA_TEST_SERVER, TESSERA_TEST_USER and
// TESSERA_TEST_ENROLL (a push enrollment link for that user).

import dev.tessera.core.*
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO

var checks = 0

fun check(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
    checks++
}

inline fun <reified E : Throwable> throws(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) {
            checks++
            return e
        }
        throw AssertionError("$what: expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("$what: nothing was thrown")
}

/** The app's key store, here a map; it can be switched to fail like a locked Keystore would. */
class MapKeyStore : KeyStore {
    val entries = HashMap<String, ByteArray>()
    var failure: Throwable? = null

    override fun load(account: String): ByteArray? {
        failure?.let { throw it }
        return entries[account]?.copyOf()
    }

    override fun store(account: String, secret: ByteArray) {
        failure?.let { throw it }
        entries[account] = secret.copyOf()
    }

    override fun delete(account: String) {
        failure?.let { throw it }
        entries.remove(account)
    }
}

class Listener : PushListener {
    val requests = LinkedBlockingQueue<PushRequest>()
    val connections = LinkedBlockingQueue<Boolean>()

    override fun onRequest(request: PushRequest) {
        requests.put(request)
    }

    override fun onConnectionChanged(connected: Boolean) {
        connections.put(connected)
    }
}

val env: (String) -> String = { name -> System.getenv(name) ?: throw AssertionError("$name is not set") }
val http: HttpClient = HttpClient.newHttpClient()

fun post(path: String, json: String): String {
    val request = HttpRequest.newBuilder(URI.create(env("TESSERA_TEST_SERVER") + path))
        .header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json))
        .build()
    return http.send(request, HttpResponse.BodyHandlers.ofString()).body()
}

fun field(json: String, name: String): String? =
    Regex("\"$name\"\\s*:\\s*(\"([^\"]*)\"|([0-9]+))").find(json)?.let { it.groupValues[2].ifEmpty { it.groupValues[3] } }

fun startLogin(user: String): Pair<String, Int> {
    val body = post("/api/v1/validate", """{"username":"$user","passcode":""}""")
    check(field(body, "result") == "challenge", "an empty passcode starts a push: $body")
    return Pair(field(body, "transaction_id")!!, field(body, "number")!!.toInt())
}

fun finishLogin(user: String, transaction: String): String =
    field(post("/api/v1/validate", """{"username":"$user","transaction_id":"$transaction"}"""), "result")!!

fun liveCodes(vault: Vault, at: ULong): List<String> =
    vault.tokensAt(at).map { row -> (row.code as Code.Live).code }

/** A listener whose connection callback throws, as a careless UI callback might. */
class ThrowingListener : PushListener {
    val requests = LinkedBlockingQueue<PushRequest>()
    var thrown = 0

    override fun onRequest(request: PushRequest) {
        requests.put(request)
    }

    override fun onConnectionChanged(connected: Boolean) {
        thrown++
        throw IllegalStateException("touched the UI from a background thread")
    }
}

/**
 * The app started again: the vault enrolled by the first run is opened in a new process (a new,
 * empty key store, so by the passphrase), listening from before the unlock, without enrolling.
 */
fun restarted() {
    val user = env("TESSERA_TEST_USER")
    val vault = Vault(env("TESSERA_TEST_DIR") + "/vault.tessera", MapKeyStore())
    // Listening starts with the app, before the unlock: the channels open at the unlock.
    val listener = ThrowingListener()
    val subscription = vault.listen(listener)
    vault.unlock("correct horse battery staple")
    val device = vault.tokens().single { it.token.pushServer != null }.token
    val (transaction, number) = startLogin(user)
    val request = listener.requests.poll(20, TimeUnit.SECONDS) ?: throw AssertionError("no request after a restart")
    check(request.transactionId == transaction && request.tokenId == device.id, "the request reached the restarted app")
    check(listener.thrown >= 1, "although the listener threw on the connection callback")
    check(runBlocking { vault.answerPush(transaction, Reply.APPROVE, number.toUInt(), null) } == "approved", "approved")
    check(finishLogin(user, transaction) == "accept", "the login went through")

    val (reported, _) = startLogin(user)
    check(listener.requests.poll(20, TimeUnit.SECONDS)?.transactionId == reported, "another request")
    check(runBlocking { vault.answerPush(reported, Reply.NOT_ME, null, null) } == "denied", "it wasn't me")
    check(finishLogin(user, reported) == "reject", "the login was refused")
    subscription.close()
    vault.close()
    println("kotlin (restarted): $checks checks passed")
}

fun main() {
    when (System.getenv("TESSERA_TEST_PHASE")) {
        "restarted" -> return restarted()
        "model" -> return modelPhase()
    }
    val dir = env("TESSERA_TEST_DIR")
    val user = env("TESSERA_TEST_USER")
    val path = "$dir/vault.tessera"
    val keyStore = MapKeyStore()
    val vault = Vault(path, keyStore)

    // A new vault, created with the key store and a passphrase.
    check(!vault.exists() && !vault.isUnlocked(), "no vault yet")
    throws<TesseraException.Locked>("listing a locked vault") { vault.tokens() }
    throws<TesseraException.InvalidInput>("a short passphrase") { vault.create("short", false) }
    vault.create("correct horse battery staple", true)
    check(vault.exists() && vault.isUnlocked(), "created and unlocked")
    check(vault.slots().sorted() == listOf("os-keystore", "passphrase"), "two slots: ${vault.slots()}")
    check(keyStore.entries.size == 1, "the slot key went to the app's key store")

    // RFC 6238 appendix B, SHA-1, SHA-256 and SHA-512.
    val seeds = listOf(
        "SHA1" to "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "SHA256" to "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA",
        "SHA512" to "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA",
    )
    for ((algorithm, seed) in seeds) {
        val added = vault.addUri("otpauth://totp/RFC%206238:$algorithm?secret=$seed&algorithm=$algorithm&digits=8", "rfc")
        check(added.tokens.single().name == "RFC 6238:$algorithm", "added ${added.tokens}")
    }
    check(liveCodes(vault, 59uL) == listOf("94287082", "46119246", "90693936"), "codes at 59")
    check(liveCodes(vault, 1111111109uL) == listOf("07081804", "68084774", "25091201"), "codes at 1111111109")
    check(liveCodes(vault, 20000000000uL) == listOf("65353130", "77737706", "47863826"), "codes at 20000000000")
    val at59 = vault.tokensAt(59uL).first().code as Code.Live
    check(at59.secondsLeft == 1u && at59.period == 30u && at59.next == liveCodes(vault, 60uL).first(), "countdown and next code")

    // RFC 4226 HOTP, typed in by hand: codes only on request, the counter advances.
    val hotp = vault.addManual(ManualToken("RFC 4226", "hotp", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "hotp", "SHA1", 6u, 30u, 0uL, null))
    val hotpId = hotp.tokens.single().id
    check(vault.tokens().single { it.token.id == hotpId }.code is Code.OnRequest, "HOTP shows no code until asked")
    check(vault.takeCode(hotpId) == "755224" && vault.takeCode(hotpId) == "287082", "RFC 4226 codes 0 and 1")
    check(vault.tokens().single { it.token.id == hotpId }.token.counter == 2uL, "the counter moved on")

    // Edits, removal and refusals.
    val renamed = vault.editToken(hotpId, "Example", "alice@example.com", "work")
    check(renamed.name == "Example:alice@example.com" && renamed.group == "work", "renamed: $renamed")
    throws<TesseraException.Conflict>("a duplicate") { vault.addUri("otpauth://totp/RFC%206238:SHA1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8", null) }
    val bad = throws<TesseraException.InvalidInput>("a malformed URI") { vault.addUri("otpauth://totp/x?secret=not*base32", null) }
    check(bad.reason.isNotEmpty() && !bad.reason.contains("not*base32"), "the message explains without echoing the secret: ${bad.reason}")
    throws<TesseraException.InvalidInput>("an enrollment link given as a token") { vault.addUri(env("TESSERA_TEST_ENROLL"), null) }
    vault.removeToken(hotpId)
    throws<TesseraException.NotFound>("removing it twice") { vault.removeToken(hotpId) }
    throws<TesseraException.NotFound>("an unknown id") { vault.takeCode("nope") }

    // What a scanned text is.
    check(parseScanned("otpauth://totp/ACME:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == Scanned.Token("ACME:bob"), "a token")
    val scannedLink = parseScanned(env("TESSERA_TEST_ENROLL"))
    check(scannedLink is Scanned.Enrollment && scannedLink.server == env("TESSERA_TEST_SERVER") && scannedLink.warning == null, "an enrollment link: $scannedLink")
    check(parseScanned("https://example.com/") == Scanned.Other, "a web address")
    throws<TesseraException.InvalidInput>("a broken enrollment link") { parseScanned("tessera://enroll?v=1") }

    // A QR image, read back from a camera-like luma frame with padded rows.
    val uri = "otpauth://totp/ACME:carol?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME"
    val image = ImageIO.read(qrPng(uri, 4u).inputStream())
    val stride = image.width + 16
    val luma = ByteArray(stride * image.height)
    for (y in 0 until image.height) for (x in 0 until image.width) {
        luma[y * stride + x] = (image.getRGB(x, y) and 0xff).toByte()
    }
    check(decodeQrLuma(image.width.toUInt(), image.height.toUInt(), stride.toUInt(), luma) == listOf(uri), "the frame decodes")
    check(decodeQrLuma(64u, 48u, 64u, ByteArray(64 * 48) { 0x7f }).isEmpty(), "a blank frame has no code")
    throws<TesseraException.InvalidInput>("a short frame") { decodeQrLuma(640u, 480u, 640u, ByteArray(100)) }

    // Lock, then reopen with the key store, without it, and with a failing one.
    vault.lock()
    throws<TesseraException.Locked>("a locked vault") { vault.takeCode(hotpId) }
    val reopened = Vault(path, keyStore)
    reopened.unlock(null)
    check(reopened.tokens().size == 3, "reopened by the key store alone")
    val elsewhere = Vault(path, MapKeyStore())
    throws<TesseraException.Locked>("no key in this key store and no passphrase") { elsewhere.unlock(null) }
    throws<TesseraException.Locked>("a wrong passphrase") { elsewhere.unlock("wrong horse battery staple") }
    elsewhere.unlock("correct horse battery staple")
    check(elsewhere.tokens().size == 3, "reopened by the passphrase")
    val failing = MapKeyStore().apply { failure = TesseraException.KeyStore("the keystore is locked by the OS") }
    val thrown = throws<TesseraException.KeyStore>("the app's key store threw") { Vault("$dir/second.tessera", failing).create(null, true) }
    check(thrown.reason.contains("the keystore is locked by the OS"), "its message came through: ${thrown.reason}")
    failing.failure = IllegalStateException("unexpected")
    throws<TesseraException.KeyStore>("the key store threw something else") { Vault("$dir/third.tessera", failing).create(null, true) }
    check(!File("$dir/second.tessera").exists() && !File("$dir/third.tessera").exists(), "no vault was left behind")

    // Push: listen (with no push device yet, as an app does at start), enroll at the real server
    // from the scanned link: the channel opens by itself; a login request arrives, is approved.
    val listener = Listener()
    val subscription = reopened.listen(listener)
    throws<TesseraException.InvalidInput>("a scanned web address") { reopened.addScanned("https://example.com/") }
    val scanned = reopened.addScanned(env("TESSERA_TEST_ENROLL"))
    val preview = scanned.enrollment ?: throw AssertionError("a scanned enrollment link asks first: $scanned")
    check(scanned.tokens.isEmpty() && reopened.tokens().none { it.token.pushServer != null }, "nothing is enrolled before the user confirms")
    check(preview.account == env("TESSERA_TEST_USER") && env("TESSERA_TEST_SERVER") == "http://${preview.host}" && !preview.cleartext, "the preview: $preview")
    val overHttp = env("TESSERA_TEST_ENROLL").replace(Regex("server=[^&]*"), "server=http%3A%2F%2F192.0.2.1%3A9")
    check(reopened.enrollmentPreview(overHttp).cleartext, "a plain-HTTP server elsewhere is flagged")
    val refused = throws<TesseraException.Denied>("plain HTTP without the second confirmation") { runBlocking { reopened.enroll(overHttp, "phone", false) } }
    check(refused.reason.contains("not HTTPS"), "refused: ${refused.reason}")
    val enrolled = runBlocking { reopened.enroll(env("TESSERA_TEST_ENROLL"), "JVM test phone", false) }
    val device = enrolled.tokens.single()
    check(device.pushServer == env("TESSERA_TEST_SERVER") && enrolled.warnings.isEmpty(), "enrolled: $enrolled")
    val reused = throws<TesseraException>("the enrollment link is single-use") { runBlocking { reopened.enroll(env("TESSERA_TEST_ENROLL"), "again", false) } }
    check(reused.message!!.contains("invalid, expired or already used"), "reused: $reused")
    check(listener.connections.poll(20, TimeUnit.SECONDS) == true, "the channel opened")

    val (first, number) = startLogin(user)
    val request = listener.requests.poll(20, TimeUnit.SECONDS) ?: throw AssertionError("no request arrived")
    check(request.transactionId == first && request.username == user && request.tokenId == device.id, "the request: $request")
    check(request.numberMatching == NumberMatchingMode.PICK && request.numberChoices.contains(number.toUInt()), "the number is among the choices")
    check(reopened.pendingRequests() == listOf(request), "it waits")
    // Two taps at once: one answer goes out, the other is refused.
    val taps = runBlocking {
        List(2) { async { runCatching { reopened.answerPush(first, Reply.APPROVE, number.toUInt(), null) } } }.awaitAll()
    }
    check(taps.count { it.getOrNull() == "approved" } == 1, "approved once: $taps")
    check(taps.count { it.exceptionOrNull() is TesseraException.Expired } == 1, "the second tap is refused: $taps")
    check(finishLogin(user, first) == "accept", "the login went through")
    throws<TesseraException.Expired>("answering twice") { runBlocking { reopened.answerPush(first, Reply.APPROVE, number.toUInt(), null) } }
    check(reopened.pendingRequests().isEmpty(), "nothing waits")

    val (second, secondNumber) = startLogin(user)
    val secondRequest = listener.requests.poll(20, TimeUnit.SECONDS)!!
    val wrong = secondRequest.numberChoices.first { it != secondNumber.toUInt() }
    throws<TesseraException.Denied>("a wrong number") { runBlocking { reopened.answerPush(second, Reply.APPROVE, wrong, null) } }
    check(finishLogin(user, second) == "reject", "a wrong number denies the login")

    // One Swipe: a signed, single-use code the server redeems once.
    val swipe = reopened.oneSwipe(device.id, null)
    check(swipe.tokenName == device.name && swipe.lifetimeSecs == 30.toUByte(), "a One Swipe code for ${swipe.tokenName}")
    val redeemed = post("/api/v1/oneswipe", """{"payload":"${swipe.payload}"}""")
    check(field(redeemed, "result") == "accept" && field(redeemed, "username") == user, "redeemed: $redeemed")
    check(field(post("/api/v1/oneswipe", """{"payload":"${swipe.payload}"}"""), "result") == "reject", "only once")
    throws<TesseraException.InvalidInput>("One Swipe from a token that is not a push device") { reopened.oneSwipe(reopened.tokens().first().token.id, null) }

    // The answer PIN: set, needed, replaced with the right one only, removed.
    check(!reopened.hasAnswerPin(), "no PIN yet")
    throws<TesseraException.InvalidInput>("a PIN too short") { reopened.setAnswerPin(null, "12") }
    reopened.setAnswerPin(null, "2468")
    check(reopened.hasAnswerPin(), "a PIN set")
    check(reopened.tokens().single { it.token.id == device.id }.code is Code.PinRequired, "the push token's code needs it")
    throws<TesseraException.Locked>("a push code without the PIN") { reopened.takeCode(device.id) }
    throws<TesseraException.Locked>("One Swipe without the PIN") { reopened.oneSwipe(device.id, null) }
    throws<TesseraException.Locked>("replacing it with a wrong one") { reopened.setAnswerPin("1111", "1357") }
    reopened.clearAnswerPin("2468")
    check(!reopened.hasAnswerPin(), "removed")

    // Closing the subscription closes the channel: a request made now reaches no one, until the
    // app listens again and the channel resumes after the last request it saw.
    subscription.close()
    Thread.sleep(500)
    val (third, _) = startLogin(user)
    check(listener.requests.poll(4, TimeUnit.SECONDS) == null, "no request after close")
    val again = Listener()
    val resumed = reopened.listen(again)
    check(again.requests.poll(20, TimeUnit.SECONDS)?.transactionId == third, "the missed request arrives on resuming")
    check(listener.requests.isEmpty(), "and only to the new listener")
    reopened.lock()
    throws<TesseraException.Locked>("answering while locked") { runBlocking { reopened.answerPush(third, Reply.DENY, null, null) } }
    reopened.unlock(null)
    check(runBlocking { reopened.answerPush(third, Reply.DENY, null, null) } == "denied", "denied")
    check(finishLogin(user, third) == "reject", "the login was refused")
    resumed.close()

    vault.close(); reopened.close(); elsewhere.close()
    println("kotlin: $checks checks passed")
}
