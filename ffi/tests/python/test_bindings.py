"""The generated Python bindings against the real library and a real tessera-server: the same
program as ffi/tests/kotlin/BindingsTest.kt, in Python. Run by tests/it/ffi.rs with the bindings
on PYTHONPATH and TESSERA_TEST_DIR, TESSERA_TEST_SERVER, TESSERA_TEST_USER, TESSERA_TEST_ENROLL set."""

import asyncio
import gc
import json
import os
import queue
import struct
import time
import urllib.request
import zlib

from tessera_ffi import (Code, KeyStore, ManualToken, NumberMatchingMode, OrganisationStep, PushListener, Reply, Scanned,
                         TesseraError, Vault, decode_qr_luma, parse_scanned, qr_png)

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def throws(error, what, call):
    global checks
    try:
        call()
    except error as e:
        checks += 1
        return e
    except Exception as e:
        raise AssertionError(f"{what}: expected {error.__name__}, got {e!r}")
    raise AssertionError(f"{what}: nothing was raised")


class DictKeyStore(KeyStore):
    """The app's key store, here a dict; it can be switched to fail."""

    def __init__(self):
        self.entries = {}
        self.failure = None

    def load(self, account):
        if self.failure:
            raise self.failure
        return self.entries.get(account)

    def store(self, account, secret):
        if self.failure:
            raise self.failure
        self.entries[account] = bytes(secret)

    def delete(self, account):
        if self.failure:
            raise self.failure
        self.entries.pop(account, None)


class Listener(PushListener):
    def __init__(self):
        self.requests = queue.Queue()
        self.connections = queue.Queue()

    def on_request(self, request):
        self.requests.put(request)

    def on_connection_changed(self, connected):
        self.connections.put(connected)


SERVER, USER, ENROLL, DIR = (os.environ[name] for name in
                             ("TESSERA_TEST_SERVER", "TESSERA_TEST_USER", "TESSERA_TEST_ENROLL", "TESSERA_TEST_DIR"))


def png_luma(png):
    """An 8-bit grey or RGB PNG's pixels as one grey byte each, rows unfiltered (PNG spec, section 9)."""
    check(png[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file")
    position, chunks = 8, {}
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        chunks[kind] = chunks.get(kind, b"") + png[position + 8:position + 8 + length]
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    check(depth == 8 and colour in (0, 2), f"an 8-bit grey or RGB PNG (depth {depth}, colour type {colour})")
    channels = 1 if colour == 0 else 3
    raw, row_bytes, rows, previous = zlib.decompress(chunks[b"IDAT"]), width * channels, [], bytearray(width * channels)
    for y in range(height):
        start = y * (row_bytes + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + row_bytes])
        for i in range(row_bytes):
            left = row[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xff
            elif kind == 2:
                row[i] = (row[i] + up) & 0xff
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xff
            elif kind == 4:
                p = left + up - up_left
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - up_left), 2, up_left))[2]
                row[i] = (row[i] + nearest) & 0xff
        rows.append(bytes(row[::channels]))
        previous = row
    return width, height, rows


def post(path, body):
    request = urllib.request.Request(SERVER + path, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def start_login():
    body = post("/api/v1/validate", {"username": USER, "passcode": ""})
    check(body["result"] == "challenge", f"an empty passcode starts a push: {body}")
    return body["transaction_id"], body["number"]


def finish_login(transaction):
    return post("/api/v1/validate", {"username": USER, "transaction_id": transaction})["result"]


def live_codes(vault, at):
    return [row.code.code for row in vault.tokens_at(at)]


def main():
    path = f"{DIR}/vault.tessera"
    key_store = DictKeyStore()
    vault = Vault(path, key_store)
    check(not vault.exists() and not vault.is_unlocked(), "no vault yet")
    throws(TesseraError.Locked, "listing a locked vault", vault.tokens)
    throws(TesseraError.InvalidInput, "a short passphrase", lambda: vault.create("short", False))
    vault.create("correct horse battery staple", True)
    check(sorted(vault.slots()) == ["os-keystore", "passphrase"] and len(key_store.entries) == 1, "two slots")

    seeds = [("SHA1", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
             ("SHA256", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA"),
             ("SHA512", "GEZDGNBVGY3TQOJQ" * 6 + "GEZDGNA")]
    for algorithm, seed in seeds:
        vault.add_uri(f"otpauth://totp/RFC%206238:{algorithm}?secret={seed}&algorithm={algorithm}&digits=8", "rfc")
    check(live_codes(vault, 59) == ["94287082", "46119246", "90693936"], "RFC 6238 codes at 59")
    check(live_codes(vault, 1111111109) == ["07081804", "68084774", "25091201"], "at 1111111109")
    check(live_codes(vault, 20000000000) == ["65353130", "77737706", "47863826"], "at 20000000000")
    first = vault.tokens_at(59)[0].code
    check(isinstance(first, Code.LIVE) and first.seconds_left == 1 and first.next == live_codes(vault, 60)[0],
          "countdown and next code")

    hotp = vault.add_manual(ManualToken(issuer="RFC 4226", label="hotp", secret="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                                        kind="hotp", algorithm="SHA1", digits=6, period=30, counter=0, group=None))
    hotp_id = hotp.tokens[0].id
    check(isinstance(next(r for r in vault.tokens() if r.token.id == hotp_id).code, Code.ON_REQUEST), "HOTP on request")
    check([vault.take_code(hotp_id), vault.take_code(hotp_id)] == ["755224", "287082"], "RFC 4226 codes 0 and 1")
    check(vault.edit_token(hotp_id, "Example", "alice", "work").name == "Example:alice", "renamed")
    throws(TesseraError.Conflict, "a duplicate",
           lambda: vault.add_uri(f"otpauth://totp/RFC%206238:SHA1?secret={seeds[0][1]}&digits=8", None))
    throws(TesseraError.InvalidInput, "a malformed URI", lambda: vault.add_uri("otpauth://totp/x?secret=*", None))
    vault.remove_token(hotp_id)
    throws(TesseraError.NotFound, "removing it twice", lambda: vault.remove_token(hotp_id))

    check(parse_scanned("otpauth://totp/ACME:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == Scanned.TOKEN("ACME:bob"),
          "a token")
    link = parse_scanned(ENROLL)
    check(isinstance(link, Scanned.ENROLLMENT) and link.server == SERVER, f"an enrollment link: {link}")
    check(isinstance(parse_scanned("https://example.com/"), Scanned.OTHER), "a web address")

    uri = "otpauth://totp/ACME:carol?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME"
    width, height, rows = png_luma(qr_png(uri, 4))
    stride = width + 16
    luma = b"".join(row + b"\x80" * 16 for row in rows)
    check(decode_qr_luma(width, height, stride, luma) == [uri], "the frame, with padded rows, decodes")
    throws(TesseraError.InvalidInput, "a short frame", lambda: decode_qr_luma(640, 480, 640, b"\0" * 100))

    vault.lock()
    throws(TesseraError.Locked, "a locked vault", lambda: vault.take_code(hotp_id))
    reopened = Vault(path, key_store)
    reopened.unlock(None)
    check(len(reopened.tokens()) == 3, "reopened by the key store")
    elsewhere = Vault(path, DictKeyStore())
    throws(TesseraError.Locked, "a wrong passphrase", lambda: elsewhere.unlock("wrong horse battery staple"))
    elsewhere.unlock("correct horse battery staple")
    failing = DictKeyStore()
    failing.failure = TesseraError.KeyStore("the keyring is locked")
    error = throws(TesseraError.KeyStore, "the app's key store raised",
                   lambda: Vault(f"{DIR}/second.tessera", failing).create(None, True))
    check("the keyring is locked" in error.reason, error.reason)
    failing.failure = RuntimeError("unexpected")
    throws(TesseraError.KeyStore, "the key store raised something else",
           lambda: Vault(f"{DIR}/third.tessera", failing).create(None, True))

    listener = Listener()
    subscription = reopened.listen(listener)
    asked = reopened.add_scanned(ENROLL)
    check(asked.enrollment is not None and not asked.tokens, f"an enrollment link asks first: {asked}")
    check(asked.enrollment.account == USER and SERVER == f"http://{asked.enrollment.host}", f"the preview: {asked.enrollment}")
    enrolled = asyncio.run(reopened.enroll(ENROLL, "Python test phone", False))
    device = enrolled.tokens[0]
    check(device.push_server == SERVER, f"enrolled: {enrolled}")
    check(listener.connections.get(timeout=20) is True, "the channel opened once a device was enrolled")

    transaction, number = start_login()
    request = listener.requests.get(timeout=20)
    check(request.transaction_id == transaction and request.username == USER, f"the request: {request}")
    check(request.number_matching == NumberMatchingMode.PICK and number in request.number_choices, "number matching")
    check(reopened.pending_requests() == [request], "it waits")
    check(asyncio.run(reopened.answer_push(transaction, Reply.APPROVE, number, None)) == "approved", "approved")
    check(finish_login(transaction) == "accept", "the login went through")
    throws(TesseraError.Expired, "answering twice",
           lambda: asyncio.run(reopened.answer_push(transaction, Reply.APPROVE, number, None)))

    transaction, number = start_login()
    request = listener.requests.get(timeout=20)
    wrong = next(n for n in request.number_choices if n != number)
    throws(TesseraError.Denied, "a wrong number",
           lambda: asyncio.run(reopened.answer_push(transaction, Reply.APPROVE, wrong, None)))
    check(finish_login(transaction) == "reject", "a wrong number denies the login")

    swipe = reopened.one_swipe(device.id, None)
    redeemed = post("/api/v1/oneswipe", {"payload": swipe.payload})
    check(redeemed["result"] == "accept" and redeemed["username"] == USER, f"redeemed: {redeemed}")
    check(post("/api/v1/oneswipe", {"payload": swipe.payload})["result"] == "reject", "only once")

    reopened.set_answer_pin(None, "2468")
    check(reopened.has_answer_pin(), "an answer PIN")
    throws(TesseraError.Locked, "One Swipe without it", lambda: reopened.one_swipe(device.id, None))
    check(reopened.one_swipe(device.id, "2468").payload, "One Swipe with it")
    reopened.clear_answer_pin("2468")
    check(not reopened.has_answer_pin(), "removed")
    throws(TesseraError.InvalidInput, "neither a token nor an enrollment link",
           lambda: reopened.add_scanned("https://example.com/"))

    newcomer, password = os.environ["TESSERA_TEST_NEWCOMER"], os.environ["TESSERA_TEST_NEWCOMER_PASSWORD"]
    code = os.environ["TESSERA_TEST_REGISTRATION_CODE"]
    phone = Vault(f"{DIR}/newcomer.tessera", DictKeyStore())
    phone.create(None, True)
    throws(TesseraError.Denied, "a wrong password",
           lambda: asyncio.run(phone.sign_in_to_organisation(SERVER, newcomer, "wrong", code, "Python phone")))
    step = asyncio.run(phone.sign_in_to_organisation(SERVER, newcomer, password, code, "Python phone"))
    check(isinstance(step, OrganisationStep.ENROLLED), f"signed in with the registration code: {step}")
    check(step.added.tokens[0].push_server == SERVER, f"a push device of {SERVER}: {step.added}")
    check([t.token.push_server for t in phone.tokens()] == [SERVER], "kept in the vault")
    again = asyncio.run(phone.sign_in_to_organisation(SERVER, newcomer, password, code, "Python tablet"))
    check(isinstance(again, OrganisationStep.APPROVE) and again.transaction_id,
          f"the code is spent; now that the user has a device, a new one is approved on it: {again}")

    subscription.cancel()
    del subscription
    gc.collect()
    transaction, _ = start_login()
    try:
        listener.requests.get(timeout=4)
        raise AssertionError("a request arrived after the subscription was cancelled")
    except queue.Empty:
        check(True, "no request after cancel")
    again = Listener()
    resumed = reopened.listen(again)
    check(again.requests.get(timeout=20).transaction_id == transaction, "the missed request arrives on resuming")
    reopened.lock()
    throws(TesseraError.Locked, "answering while locked",
           lambda: asyncio.run(reopened.answer_push(transaction, Reply.DENY, None, None)))
    reopened.unlock(None)
    check(asyncio.run(reopened.answer_push(transaction, Reply.NOT_ME, None, None)) == "denied", "it wasn't me")
    check(finish_login(transaction) == "reject", "the login was refused")
    del resumed
    # The listener task ends on the library's threads just after; let it release the Python
    # listener before the interpreter shuts down.
    time.sleep(0.5)
    print(f"python: {checks} checks passed")


main()
