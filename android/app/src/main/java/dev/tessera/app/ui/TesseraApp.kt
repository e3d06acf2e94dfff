// The screens: first run and unlock, the token list with live codes and countdowns, scanning,
// signing in to the organisation, the push approval with number matching (and the answer PIN when
// set), One Swipe, and setting the answer PIN. Each calls one TesseraModel action.
package dev.tessera.app.ui

import android.graphics.BitmapFactory
import androidx.compose.foundation.Image
import androidx.compose.foundation.ExperimentalFoundationApi
import androidx.compose.foundation.combinedClickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Button
import androidx.compose.material3.ButtonDefaults
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.ListItem
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Scaffold
import androidx.compose.material3.SnackbarHost
import androidx.compose.material3.SnackbarHostState
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.text.input.PasswordVisualTransformation
import androidx.compose.ui.unit.dp
import dev.tessera.app.model.OrganisationSignIn
import dev.tessera.app.model.PendingEnrollment
import dev.tessera.app.model.Screen
import dev.tessera.app.model.TesseraModel
import dev.tessera.app.model.TokenView
import dev.tessera.core.NumberMatchingMode
import dev.tessera.core.OneSwipeCode
import dev.tessera.core.PushRequest
import dev.tessera.core.Reply
import dev.tessera.core.qrPng
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

@Composable
fun TesseraApp(model: TesseraModel) {
    val screen by model.screen.collectAsState()
    val requests by model.requests.collectAsState()
    val message by model.message.collectAsState()
    val enrollment by model.enrollment.collectAsState()
    val snackbar = remember { SnackbarHostState() }
    LaunchedEffect(message) {
        message?.let {
            snackbar.showSnackbar(it)
            model.dismissMessage()
        }
    }
    MaterialTheme {
        Scaffold(snackbarHost = { SnackbarHost(snackbar) }) { padding ->
            Column(Modifier.padding(padding).fillMaxSize()) {
                when (val shown = screen) {
                    Screen.FirstRun -> PassphraseScreen(model, creating = true)
                    Screen.Locked -> PassphraseScreen(model, creating = false, waiting = requests.size)
                    is Screen.Tokens -> TokenListScreen(model, shown)
                }
            }
            if (screen is Screen.Tokens) requests.firstOrNull()?.let { ApprovalDialog(model, it) }
            if (screen is Screen.Tokens) enrollment?.let { EnrollDialog(model, it) }
        }
    }
}

@Composable
private fun PassphraseScreen(model: TesseraModel, creating: Boolean, waiting: Int = 0) {
    val scope = rememberCoroutineScope()
    var passphrase by remember { mutableStateOf("") }
    Column(Modifier.padding(24.dp), verticalArrangement = Arrangement.spacedBy(16.dp)) {
        Text(if (creating) "Create your vault" else "Tessera is locked", style = MaterialTheme.typography.headlineSmall)
        if (waiting > 0) Text("A login request is waiting: unlock to answer it.")
        OutlinedTextField(
            passphrase, { passphrase = it },
            label = { Text(if (creating) "Passphrase (optional, 12 characters or more)" else "Passphrase") },
            visualTransformation = PasswordVisualTransformation(), modifier = Modifier.fillMaxWidth(),
        )
        Button(onClick = {
            scope.launch { if (creating) model.create(passphrase) else model.unlock(passphrase) }
            passphrase = ""
        }) { Text(if (creating) "Create" else "Unlock") }
    }
}

@Composable
private fun TokenListScreen(model: TesseraModel, shown: Screen.Tokens) {
    val scope = rememberCoroutineScope()
    val context = LocalContext.current
    val hasPin by model.hasPin.collectAsState()
    var scanning by remember { mutableStateOf(false) }
    var settingPin by remember { mutableStateOf(false) }
    var signingIn by remember { mutableStateOf(false) }
    var swipeFor by remember { mutableStateOf<String?>(null) }
    var swipe by remember { mutableStateOf<OneSwipeCode?>(null) }
    LaunchedEffect(Unit) {
        while (true) {
            model.refresh()
            delay(1_000)
        }
    }
    if (scanning) {
        ScanScreen(onText = { text -> scope.launch { if (model.add(text) != null) scanning = false } }, onClose = { scanning = false })
        return
    }
    swipe?.let { code -> OneSwipeDialog(code) { swipe = null } }
    swipeFor?.let { id ->
        PinDialog("One Swipe", "Your answer PIN", onCancel = { swipeFor = null }) { pin ->
            scope.launch { model.oneSwipe(id, pin)?.let { swipe = it; swipeFor = null } }
        }
    }
    if (signingIn) SignInDialog(model) { signingIn = false }
    if (settingPin) {
        SetPinDialog(hasPin, onCancel = { settingPin = false }) { current, new ->
            scope.launch { if (model.setPin(current, new)) settingPin = false }
        }
    }
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            OutlinedTextField(shown.query, { text -> scope.launch { model.search(text) } }, label = { Text("Search") }, modifier = Modifier.weight(1f))
            Button(onClick = { scanning = true }) { Text("Scan") }
            TextButton(onClick = { settingPin = true }) { Text("PIN") }
        }
        if (shown.tokens.isEmpty() && shown.query.isBlank()) {
            OutlinedButton(onClick = { signingIn = true }, modifier = Modifier.fillMaxWidth()) {
                Text("Sign in to your organisation")
            }
        }
        LazyColumn {
            items(shown.tokens, key = { it.id }) { token ->
                TokenRow(
                    token,
                    onCopy = { scope.launch { model.takeCode(token.id)?.let { copySensitive(context, it) } } },
                    onOneSwipe = {
                        if (hasPin) swipeFor = token.id else scope.launch { swipe = model.oneSwipe(token.id, null) }
                    },
                )
            }
        }
    }
}

/**
 * Signing in to the organisation: the server's address, username, password and a passcode or
 * registration code; then what the server asks next (an approval on another device, a sent code).
 */
@Composable
private fun SignInDialog(model: TesseraModel, onClose: () -> Unit) {
    val scope = rememberCoroutineScope()
    val step by model.signIn.collectAsState()
    var server by remember { mutableStateOf("https://") }
    var username by remember { mutableStateOf("") }
    var password by remember { mutableStateOf("") }
    var factor by remember { mutableStateOf("") }
    var busy by remember { mutableStateOf(false) }
    val close = {
        model.cancelOrganisationSignIn()
        onClose()
    }
    val run = { action: suspend () -> Unit ->
        busy = true
        scope.launch {
            action()
            busy = false
        }
    }
    LaunchedEffect(step) {
        if (step is OrganisationSignIn.Approve) run { model.continueOrganisationSignIn(null) }
    }
    AlertDialog(
        onDismissRequest = close,
        title = { Text("Sign in to your organisation") },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                when (val shown = step) {
                    null, is OrganisationSignIn.EnterPasscode -> {
                        if (shown is OrganisationSignIn.EnterPasscode) Text(shown.message)
                        OutlinedTextField(server, { server = it }, label = { Text("Server address") }, singleLine = true)
                        OutlinedTextField(username, { username = it }, label = { Text("Username") }, singleLine = true)
                        OutlinedTextField(
                            password, { password = it }, label = { Text("Password") }, singleLine = true,
                            visualTransformation = PasswordVisualTransformation(),
                        )
                        OutlinedTextField(
                            factor, { factor = it }, singleLine = true,
                            label = { Text("Passcode or registration code (empty: approve or get a code)") },
                        )
                    }
                    is OrganisationSignIn.Approve -> {
                        Text(shown.message)
                        shown.number?.let { Text("$it", style = MaterialTheme.typography.displayMedium) }
                        CircularProgressIndicator()
                    }
                    is OrganisationSignIn.EnterSentCode -> {
                        Text(shown.message)
                        PinField(factor, "Code") { factor = it }
                    }
                    is OrganisationSignIn.Done -> Text("Signed in: ${shown.names.joinToString()} is ready on this phone.")
                }
            }
        },
        confirmButton = {
            when (step) {
                null, is OrganisationSignIn.EnterPasscode -> Button(
                    onClick = { run { model.signInToOrganisation(server, username, password, factor) } },
                    enabled = !busy && username.isNotBlank(),
                ) { Text("Sign in") }
                is OrganisationSignIn.EnterSentCode -> Button(
                    onClick = { run { model.continueOrganisationSignIn(factor) } },
                    enabled = !busy && factor.isNotEmpty(),
                ) { Text("Continue") }
                is OrganisationSignIn.Done -> Button(onClick = close) { Text("Done") }
                is OrganisationSignIn.Approve -> {}
            }
        },
        dismissButton = { if (step !is OrganisationSignIn.Done) TextButton(onClick = close) { Text("Cancel") } },
    )
}

@Composable
private fun PinDialog(title: String, label: String, onCancel: () -> Unit, onPin: (String) -> Unit) {
    var pin by remember { mutableStateOf("") }
    AlertDialog(
        onDismissRequest = onCancel,
        title = { Text(title) },
        text = { PinField(pin, label) { pin = it } },
        confirmButton = { Button(onClick = { onPin(pin) }, enabled = pin.isNotEmpty()) { Text("OK") } },
        dismissButton = { TextButton(onClick = onCancel) { Text("Cancel") } },
    )
}

@Composable
private fun SetPinDialog(hasPin: Boolean, onCancel: () -> Unit, onSet: (String?, String) -> Unit) {
    var current by remember { mutableStateOf("") }
    var new by remember { mutableStateOf("") }
    AlertDialog(
        onDismissRequest = onCancel,
        title = { Text(if (hasPin) "Change the answer PIN" else "Set an answer PIN") },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                Text("Asked before approving a login and before One Swipe. Ten wrong PINs in a row remove this phone's push devices.")
                if (hasPin) PinField(current, "Current PIN") { current = it }
                PinField(new, "New PIN (4 or more characters)") { new = it }
            }
        },
        confirmButton = { Button(onClick = { onSet(current.ifEmpty { null }, new) }, enabled = new.isNotEmpty()) { Text("Save") } },
        dismissButton = { TextButton(onClick = onCancel) { Text("Cancel") } },
    )
}

@Composable
private fun PinField(value: String, label: String, onChange: (String) -> Unit) {
    OutlinedTextField(
        value, onChange,
        label = { Text(label) },
        visualTransformation = PasswordVisualTransformation(),
        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.NumberPassword),
        singleLine = true,
    )
}

@OptIn(ExperimentalFoundationApi::class)
@Composable
private fun TokenRow(token: TokenView, onCopy: () -> Unit, onOneSwipe: () -> Unit) {
    var showNext by remember { mutableStateOf(false) }
    ListItem(
        headlineContent = { Text(token.name) },
        supportingContent = {
            Text(
                when {
                    token.needsPin -> "PIN needed"
                    token.code == null -> "Tap for a code"
                    showNext -> "next ${token.nextCode}"
                    else -> token.code
                },
                style = MaterialTheme.typography.headlineMedium,
            )
        },
        trailingContent = {
            Row {
                if (token.period > 0) CircularProgressIndicator(progress = { token.remaining })
                if (token.isPush) TextButton(onClick = onOneSwipe) { Text("One Swipe") }
            }
        },
        modifier = Modifier.combinedClickable(onClick = onCopy, onLongClick = { showNext = !showNext }),
    )
}

@Composable
private fun ApprovalDialog(model: TesseraModel, request: PushRequest) {
    val scope = rememberCoroutineScope()
    val hasPin by model.hasPin.collectAsState()
    val answering by model.answering.collectAsState()
    val idle = answering == null
    var typed by remember(request.transactionId) { mutableStateOf("") }
    var pin by remember(request.transactionId) { mutableStateOf("") }
    var secondsLeft by remember(request.transactionId) { mutableStateOf(0L) }
    LaunchedEffect(request.transactionId) {
        while (true) {
            secondsLeft = (request.expiresAt.toLong() - System.currentTimeMillis() / 1000).coerceAtLeast(0)
            delay(500)
        }
    }
    val answer = { reply: Reply, number: UInt? ->
        scope.launch { model.answer(request.transactionId, reply, number, pin.takeIf { reply == Reply.APPROVE }) }
    }
    val approvable = idle && (!hasPin || pin.isNotEmpty())
    AlertDialog(
        onDismissRequest = {},
        title = { Text("Log in to ${request.service}?") },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                Text("${request.username} from ${request.clientIp ?: "an unknown address"}")
                request.userAgent?.let { Text(it) }
                Text("$secondsLeft s left")
                if (hasPin) PinField(pin, "Your answer PIN") { pin = it }
                when (request.numberMatching) {
                    NumberMatchingMode.PICK -> {
                        Text("Tap the number the login screen shows")
                        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                            request.numberChoices.forEach { n -> Button(onClick = { answer(Reply.APPROVE, n) }, enabled = approvable) { Text("$n") } }
                        }
                    }
                    NumberMatchingMode.TYPE -> OutlinedTextField(
                        typed, { typed = it.filter(Char::isDigit).take(2) },
                        label = { Text("Number on the login screen") },
                        keyboardOptions = KeyboardOptions(keyboardType = KeyboardType.Number),
                    )
                    NumberMatchingMode.OFF -> {}
                }
            }
        },
        confirmButton = {
            if (request.numberMatching != NumberMatchingMode.PICK) {
                Button(onClick = { answer(Reply.APPROVE, typed.toUIntOrNull()) }, enabled = approvable) { Text("Approve") }
            }
        },
        dismissButton = {
            Row {
                OutlinedButton(onClick = { answer(Reply.DENY, null) }, enabled = idle) { Text("Deny") }
                TextButton(onClick = { answer(Reply.NOT_ME, null) }, enabled = idle) { Text("It wasn't me") }
            }
        },
    )
}

/** Where an enrollment link leads, asked before anything is sent; plain HTTP gets a second, red step. */
@Composable
private fun EnrollDialog(model: TesseraModel, pending: PendingEnrollment) {
    val scope = rememberCoroutineScope()
    val preview = pending.preview
    AlertDialog(
        onDismissRequest = { model.cancelEnrollment() },
        title = { Text("Enroll as a push device?") },
        text = {
            Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
                Text("This phone will approve logins for this account. Enroll only if you asked for it.")
                Text("Server: ${preview.host}", fontWeight = FontWeight.Bold)
                Text("Organization: ${preview.issuer ?: "(not named)"}")
                Text("Account: ${preview.account ?: "(not named)"}")
                if (pending.warned) {
                    Text(
                        "Not secure. ${preview.server} is reached by plain HTTP. Anyone on this network can read this " +
                            "enrollment and take over this push device.",
                        color = MaterialTheme.colorScheme.error,
                        fontWeight = FontWeight.Bold,
                    )
                }
            }
        },
        confirmButton = {
            val label = when {
                pending.warned -> "Enroll over HTTP anyway"
                preview.cleartext -> "Continue"
                else -> "Enroll"
            }
            val colors = if (pending.warned) {
                ButtonDefaults.buttonColors(containerColor = MaterialTheme.colorScheme.error)
            } else {
                ButtonDefaults.buttonColors()
            }
            Button(onClick = { scope.launch { model.confirmEnrollment() } }, colors = colors) { Text(label) }
        },
        dismissButton = { TextButton(onClick = { model.cancelEnrollment() }) { Text("Cancel") } },
    )
}

@Composable
private fun OneSwipeDialog(code: OneSwipeCode, onClose: () -> Unit) {
    val image = remember(code.payload) {
        val png = qrPng(code.payload, 8u)
        BitmapFactory.decodeByteArray(png, 0, png.size).asImageBitmap()
    }
    var secondsLeft by remember(code.payload) { mutableStateOf(0L) }
    LaunchedEffect(code.payload) {
        while (true) {
            secondsLeft = code.expiresAt.toLong() - System.currentTimeMillis() / 1000
            if (secondsLeft <= 0) onClose()
            delay(250)
        }
    }
    AlertDialog(
        onDismissRequest = onClose,
        title = { Text("One Swipe: ${code.tokenName}") },
        text = {
            Column {
                Image(image, contentDescription = "One Swipe QR code", modifier = Modifier.fillMaxWidth())
                Text("Show it to the login screen's camera. $secondsLeft s left.")
            }
        },
        confirmButton = { TextButton(onClick = onClose) { Text("Done") } },
    )
}
