// The Android app's view-model (android/app/src/main/java/dev/tessera/app/model) on the JVM,
// against the real library and a real server: the state each screen shows through a first run,
// adding a token, search, lock and unlock, enrolling from a link offered while locked, a push
// denial, an answer PIN, a One Swipe code, an approval with the PIN, and signing in to the
// organisation with a registration code.
// Run by tests/it/ffi.rs as BindingsTestKt with TESSERA_TEST_PHASE=model.

import dev.tessera.app.model.OrganisationSignIn
import dev.tessera.app.model.Screen
import dev.tessera.app.model.TesseraModel
import dev.tessera.app.model.groupCode
import dev.tessera.core.Reply
import dev.tessera.core.Vault
import kotlinx.coroutines.runBlocking

fun tokensOf(model: TesseraModel): Screen.Tokens =
    model.screen.value as? Screen.Tokens ?: throw AssertionError("not the token list: ${model.screen.value}")

fun modelPhase() = runBlocking {
    val user = env("TESSERA_TEST_USER")
    val vault = Vault(env("TESSERA_TEST_DIR") + "/model.tessera", MapKeyStore())
    val model = TesseraModel(vault, "JVM view-model phone")
    check(model.screen.value == Screen.FirstRun, "a first run")
    check(!model.create("short"), "a short passphrase is refused")
    check(model.message.value!!.contains("at least"), "with the library's message: ${model.message.value}")
    model.dismissMessage()
    check(model.create("correct horse battery staple"), "created")
    check(tokensOf(model).tokens.isEmpty(), "an empty list")

    check(groupCode("123456") == "123 456" && groupCode("12345678") == "1234 5678" && groupCode("12345") == "12345", "codes are grouped")
    val added = model.add("otpauth://totp/ACME:ann@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME")
    check(added == listOf("ACME:ann@example.com"), "added $added")
    model.add("otpauth://totp/Other:bob?secret=JBSWY3DPEHPK3PXP")
    val row = tokensOf(model).tokens.first { it.name == "ACME:ann@example.com" }
    check(Regex("[0-9]{3} [0-9]{3}").matches(row.code!!) && row.secondsLeft in 1..30 && row.remaining in 0f..1f, "a live row: $row")
    check(model.add("https://example.com") == null && model.message.value!!.contains("no token"), "a web address is not added")
    model.search("acme")
    check(tokensOf(model).tokens.map { it.name } == listOf("ACME:ann@example.com") && tokensOf(model).query == "acme", "search")
    model.search("")
    check(model.takeCode(row.id)!!.length == 6, "a code to copy")

    model.lock()
    check(model.screen.value == Screen.Locked, "locked")
    model.refresh()
    check(model.screen.value == Screen.Locked, "a locked vault shows no tokens")
    // The app opened with an enrollment link while locked: at the unlock it asks, once; nothing is
    // sent before the user confirms (a plain-HTTP server elsewhere takes a second confirmation).
    val overHttp = env("TESSERA_TEST_ENROLL").replace(Regex("server=[^&]*"), "server=http%3A%2F%2F192.0.2.1%3A9")
    model.offerLink(overHttp)
    check(model.unlock(null), "unlocked by the key store")
    check(model.enrollment.value?.preview?.cleartext == true, "the enrollment dialog asks: ${model.enrollment.value}")
    check(model.confirmEnrollment() == null && model.enrollment.value?.warned == true, "the first confirmation shows the red warning")
    model.cancelEnrollment()
    check(model.enrollment.value == null && tokensOf(model).tokens.none { it.isPush }, "cancelled: nothing enrolled")
    model.lock()
    model.offerLink(env("TESSERA_TEST_ENROLL"))
    check(model.unlock(null), "unlocked again")
    val asked = model.enrollment.value ?: throw AssertionError("the offered link did not ask: ${model.message.value}")
    check(asked.preview.account == user && !asked.preview.cleartext && tokensOf(model).tokens.none { it.isPush }, "asked first: $asked")
    check(model.confirmEnrollment() != null, "confirmed: ${model.message.value}")
    val device = tokensOf(model).tokens.singleOrNull { it.isPush } ?: throw AssertionError("the offered link was not enrolled: ${model.message.value}")
    check(tokensOf(model).tokens.size == 3, "both tokens and the push device")

    val (transaction, number) = startLogin(user)
    val deadline = System.currentTimeMillis() + 20_000
    while (model.requests.value.isEmpty() && System.currentTimeMillis() < deadline) Thread.sleep(50)
    val request = model.requests.value.singleOrNull() ?: throw AssertionError("no request reached the view-model")
    check(request.transactionId == transaction && model.connected.value, "the approval screen's request")
    check(model.answer(transaction, Reply.DENY, null, null) == "denied", "denied from the approval screen")
    check(model.requests.value.isEmpty() && model.answering.value == null, "the request left the screen")
    check(finishLogin(user, transaction) == "reject", "and the login was refused")
    check(number in 10..99, "the login screen showed a number")

    // An answer PIN: One Swipe and answers ask for it.
    check(!model.hasPin.value && model.setPin(null, "2468") && model.hasPin.value, "a PIN set")
    check(tokensOf(model).tokens.single { it.isPush }.needsPin, "the push token's code needs the PIN")
    check(model.oneSwipe(device.id, null) == null && model.message.value!!.contains("PIN"), "One Swipe without the PIN: ${model.message.value}")
    val swipe = model.oneSwipe(device.id, "2468")!!
    check(field(post("/api/v1/oneswipe", """{"payload":"${swipe.payload}"}"""), "result") == "accept", "One Swipe logged in")
    val (approved, approvedNumber) = startLogin(user)
    val approvedDeadline = System.currentTimeMillis() + 20_000
    while (model.requests.value.isEmpty() && System.currentTimeMillis() < approvedDeadline) Thread.sleep(50)
    check(model.answer(approved, Reply.APPROVE, approvedNumber.toUInt(), "0000") == null, "a wrong PIN")
    check(model.requests.value.any { it.transactionId == approved }, "the request stays for another try")
    check(model.answer(approved, Reply.APPROVE, approvedNumber.toUInt(), "2468") == "approved", "approved with the PIN: ${model.message.value}")
    check(finishLogin(user, approved) == "accept", "and the login went through")
    check(model.remove(device.id) && tokensOf(model).tokens.none { it.isPush }, "the push token removed")

    // Signing in to the organisation from the app: a wrong password refused; the help desk's
    // registration code makes this phone a push device; a second sign-in is approved on it.
    val server = env("TESSERA_TEST_SERVER")
    val newcomer = env("TESSERA_TEST_NEWCOMER")
    val registration = env("TESSERA_TEST_REGISTRATION_CODE")
    check(model.signInToOrganisation(server, newcomer, "wrong", registration) == null && model.message.value != null, "a wrong password is refused")
    model.dismissMessage()
    val signedIn = model.signInToOrganisation(server, newcomer, env("TESSERA_TEST_NEWCOMER_PASSWORD"), registration)
    check(signedIn is OrganisationSignIn.Done && model.signIn.value == signedIn, "signed in: $signedIn ${model.message.value}")
    check(tokensOf(model).tokens.count { it.isPush } == 1, "the new push device is listed")
    val again = model.signInToOrganisation(server, newcomer, env("TESSERA_TEST_NEWCOMER_PASSWORD"), null)
    check(again is OrganisationSignIn.Approve && again.transactionId.isNotEmpty(), "now approved on the device the user has: $again")
    model.cancelOrganisationSignIn()
    check(model.signIn.value == null, "the sheet closed")
    model.close()
    vault.close()
    println("kotlin (view-model): $checks checks passed")
}
