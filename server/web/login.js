// Tessera's login page: passcode, push approval, codes sent by SMS or email, a call in which the
// user keys the code shown here, and One Swipe read by the webcam. QR decoding
// runs in the page with Tessera's own Rust decoder compiled to WebAssembly (/login/decoder/).

const $ = (id) => document.getElementById(id);
let stopCamera = null;
// The code screen's login: who, the transaction of a real-time code, and the countdown's timer.
let pending = null;
const RESEND_COOLDOWN_SECONDS = 30;

function status(text) { $("status").textContent = text; }

function result(state, text) {
  const element = $("result");
  element.dataset.state = state;
  element.textContent = text;
}

function fields() {
  const body = {};
  const username = $("username").value.trim();
  if (username) body.username = username;
  if ($("password").value) body.password = $("password").value;
  return body;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok && !answer.result) throw new Error(answer.message || `the server answered ${response.status}`);
  return answer;
}

function finish(answer, username) {
  if (answer.result === "accept") {
    result("signed-in", `Signed in as ${answer.username || username}.`);
    status("");
  } else {
    result("refused", answer.message || "Sign-in refused.");
  }
}

async function signIn(event) {
  event.preventDefault();
  const body = fields();
  if (!body.username) { status("Enter your username."); return; }
  body.passcode = $("passcode").value.trim();
  $("submit").disabled = true;
  result("idle", "");
  try {
    const answer = await post("/api/v1/validate", body);
    await answered(answer, body);
  } catch (error) {
    result("refused", error.message);
  } finally {
    $("submit").disabled = false;
  }
}

// What a validation answered: signed in or refused, a push to approve, or a code sent.
async function answered(answer, body) {
  if (answer.result === "challenge" && answer.channel === "voice") {
    await waitForCall(answer, body);
  } else if (answer.result === "challenge" && answer.channel) {
    showCodeScreen(answer, body);
  } else if (answer.result === "challenge" && answer.transaction_id) {
    await waitForApproval(body.username, answer);
  } else if (answer.result === "challenge") {
    status(answer.message);
    $("passcode").focus();
  } else {
    finish(answer, body.username);
  }
}

// A code went to the user's phone or mailbox: ask for it, count down to its expiry, and offer to
// send it again (after a cool-down) or to use another way.
function showCodeScreen(answer, body) {
  if (pending) clearInterval(pending.timer);
  pending = { username: body.username, password: body.password, transaction: answer.transaction_id, timer: null };
  $("credentials").hidden = true;
  $("call").hidden = true;
  $("code-form").hidden = false;
  const medium = answer.channel === "email" ? "email" : "text message";
  $("code-prompt").textContent = answer.expires_at && answer.destination
    ? `Enter the code sent to ${answer.destination} by ${medium}.`
    : sentence(answer.message);
  $("code").value = "";
  $("code").focus();
  status("");
  result("idle", "");
  const ways = answer.ways || [];
  $("other-ways").hidden = ways.length < 2;
  for (const button of $("other-ways").querySelectorAll("button")) {
    button.hidden = !ways.includes(button.dataset.way) || button.dataset.way === answer.channel;
  }
  const sentAt = Date.now();
  const tick = () => {
    const left = answer.expires_at ? Math.round(answer.expires_at - Date.now() / 1000) : null;
    const countdown = $("countdown");
    if (left !== null && left <= 0) {
      countdown.textContent = "The code has expired: send a new one.";
      countdown.dataset.expired = "";
    } else {
      delete countdown.dataset.expired;
      countdown.textContent = left === null ? "" : `The code works for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} more.`;
    }
    const wait = RESEND_COOLDOWN_SECONDS - Math.floor((Date.now() - sentAt) / 1000);
    $("resend").disabled = wait > 0;
    $("resend").textContent = wait > 0 ? `Send again (${wait} s)` : "Send again";
  };
  tick();
  pending.timer = setInterval(tick, 1000);
  $("resend").dataset.way = answer.channel;
}

// Asks for a code (or a push) by the way named, as a keyword passcode.
async function askBy(way) {
  if (!pending) return;
  const body = { username: pending.username, passcode: way };
  if (pending.password) body.password = pending.password;
  try {
    const answer = await post("/api/v1/validate", body);
    if (answer.result === "challenge" && !answer.channel) {
      leaveCodeScreen();
    }
    await answered(answer, body);
  } catch (error) {
    result("refused", error.message);
  }
}

async function submitCode(event) {
  event.preventDefault();
  if (!pending) return;
  const code = $("code").value.trim();
  if (!code) { status("Enter the code."); return; }
  const body = pending.transaction
    ? { username: pending.username, transaction_id: pending.transaction, passcode: code }
    : { username: pending.username, passcode: code, ...(pending.password ? { password: pending.password } : {}) };
  $("code-submit").disabled = true;
  result("idle", "");
  try {
    const answer = await post("/api/v1/validate", body);
    if (answer.result === "accept") leaveCodeScreen();
    finish(answer, body.username);
  } catch (error) {
    result("refused", error.message);
  } finally {
    $("code-submit").disabled = false;
  }
}

// A server message ("enter the passcode …") as a sentence on the page.
function sentence(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return "";
  const capitalised = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

function leaveCodeScreen() {
  if (pending) clearInterval(pending.timer);
  pending = null;
  $("code-form").hidden = true;
  $("call").hidden = true;
  $("credentials").hidden = false;
}

async function waitForApproval(username, challenge) {
  const number = challenge.number ? ` and choose ${challenge.number}` : "";
  status(`Approve the sign-in on your device${number}.`);
  if (challenge.number) {
    const shown = document.createElement("span");
    shown.className = "number";
    shown.textContent = ` ${challenge.number}`;
    $("status").append(shown);
  }
  const id = encodeURIComponent(challenge.transaction_id);
  for (let tries = 0; tries < 20; tries++) {
    const response = await fetch(`/api/v1/transactions/${id}?wait=25`);
    const state = await response.json();
    if (state.status === "pending") continue;
    if (state.status !== "approved") { result("refused", `The request was ${state.status}.`); status(""); return; }
    finish(await post("/api/v1/validate", { username, transaction_id: challenge.transaction_id }), username);
    return;
  }
  result("refused", "The request expired.");
}

// What a denied call's reason means for the user.
const CALL_ENDINGS = {
  not_answered: "The call was not answered.",
  busy: "The line was busy or the call was declined.",
  hung_up: "The call ended before the code was keyed in.",
  no_keys: "No code was keyed in during the call.",
  wrong_code: "The code was keyed in wrong three times.",
  fraud: "You reported this sign-in: it was stopped, and your administrator was alerted.",
  failed: "The call could not be placed.",
};

// A voice token's call: show the code to key in, count down, and wait on the transaction until
// the call approves or ends it.
async function waitForCall(answer, body) {
  if (pending) clearInterval(pending.timer);
  pending = { username: body.username, password: body.password, transaction: answer.transaction_id, timer: null };
  const call = pending;
  $("credentials").hidden = true;
  $("code-form").hidden = true;
  $("call").hidden = false;
  $("call-prompt").textContent = `Answer the call to ${answer.destination || "your phone"} and key in this code:`;
  $("display-code").textContent = answer.display_code;
  delete $("display-code").dataset.ended;
  status("Calling…");
  result("idle", "");
  const ways = answer.ways || [];
  // While the phone rings, other ways are offered; another call only once this one has ended.
  const offer = (callAgain) => {
    let shown = 0;
    for (const button of $("call-ways").querySelectorAll("button")) {
      button.hidden = !ways.includes(button.dataset.way) || (button.dataset.way === "voice" && !callAgain);
      if (!button.hidden) shown++;
    }
    $("call-ways").hidden = shown === 0;
  };
  offer(false);
  const tick = () => {
    const left = Math.round(answer.expires_at - Date.now() / 1000);
    const countdown = $("call-countdown");
    if (left <= 0) {
      countdown.textContent = "The code has expired.";
      countdown.dataset.expired = "";
    } else {
      delete countdown.dataset.expired;
      countdown.textContent = `The code works for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} more.`;
    }
  };
  tick();
  call.timer = setInterval(tick, 1000);
  const id = encodeURIComponent(answer.transaction_id);
  while (pending === call) {
    let state;
    try {
      const response = await fetch(`/api/v1/transactions/${id}?wait=25`);
      state = await response.json();
    } catch (error) {
      status(`Waiting for the call… (${error.message})`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    if (pending !== call) return;
    if (state.status === "pending") { status("Waiting for the code to be keyed in…"); continue; }
    clearInterval(call.timer);
    if (state.status === "approved") {
      status("Code keyed in: signing in…");
      const done = await post("/api/v1/validate", { username: call.username, transaction_id: answer.transaction_id });
      if (done.result === "accept") leaveCallScreen();
      finish(done, call.username);
      status("");
    } else {
      const why = CALL_ENDINGS[state.reason] || `The request was ${state.status}.`;
      result("refused", state.reason === "fraud" ? why : `${why} Try again, or use another way.`);
      status("");
      $("call-countdown").textContent = "";
      $("display-code").dataset.ended = "";
      if (state.reason !== "fraud") offer(true);
    }
    return;
  }
}

function leaveCallScreen() {
  if (pending) clearInterval(pending.timer);
  pending = null;
  $("call").hidden = true;
  $("credentials").hidden = false;
}

async function oneSwipe() {
  result("idle", "");
  let decoder;
  try {
    decoder = await import("/login/decoder/tessera_wasm.js");
    await decoder.default();
  } catch {
    status("One Swipe is not available: this server has no web decoder installed.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "user" },
      audio: false,
    });
  } catch (error) {
    status(`The camera could not be opened: ${error.message}`);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("camera").hidden = false;
  $("oneswipe").disabled = true;
  status("Looking for a One Swipe code…");
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let running = true;
  stopCamera = () => {
    running = false;
    stream.getTracks().forEach((track) => track.stop());
    $("camera").hidden = true;
    $("oneswipe").disabled = false;
    stopCamera = null;
  };
  const started = performance.now();
  let frames = 0;
  while (running) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
    if (!running || video.readyState < 2 || !video.videoWidth) continue;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    context.drawImage(video, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    frames++;
    let text;
    try {
      text = decoder.decode_rgba(canvas.width, canvas.height, pixels.data);
    } catch (error) {
      throw new Error(`${error.message}: ${decoder.last_panic()}`);
    }
    if (text && decoder.is_one_swipe(text)) {
      stopCamera();
      status(`Read after ${frames} frames (${Math.round(performance.now() - started)} ms); checking…`);
      try {
        finish(await post("/api/v1/oneswipe", { payload: text, ...fields() }), fields().username);
      } catch (error) {
        result("refused", error.message);
      }
      return;
    }
  }
  status("");
}

document.addEventListener("DOMContentLoaded", () => {
  $("credentials").addEventListener("submit", signIn);
  $("oneswipe").addEventListener("click", () =>
    oneSwipe().catch((error) => {
      if (stopCamera) stopCamera();
      status(`One Swipe stopped: ${error.message}`);
    }));
  $("stop").addEventListener("click", () => stopCamera && stopCamera());
  $("code-form").addEventListener("submit", submitCode);
  $("resend").addEventListener("click", () => askBy($("resend").dataset.way));
  $("start-over").addEventListener("click", () => { leaveCodeScreen(); result("idle", ""); status(""); });
  for (const button of $("other-ways").querySelectorAll("button")) {
    button.addEventListener("click", () => askBy(button.dataset.way));
  }
  for (const button of $("call-ways").querySelectorAll("button")) {
    button.addEventListener("click", () => askBy(button.dataset.way));
  }
  $("call-start-over").addEventListener("click", () => { leaveCallScreen(); result("idle", ""); status(""); });
});
