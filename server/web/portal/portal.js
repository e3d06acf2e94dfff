// Tessera portal: the one script, for live status. While a push approval is awaited it waits on
// the transaction and continues as soon as the phone answers; while a new phone is being added it
// watches for the phone's registration. Without it, the page's button does the same.

const form = document.querySelector("form[data-transaction]");

// Why a voice token's call ended without signing in.
const CALL_ENDINGS = {
  not_answered: "The call was not answered.",
  busy: "The line was busy or the call was declined.",
  hung_up: "The call ended before the code was keyed in.",
  no_keys: "No code was keyed in during the call.",
  wrong_code: "The code was keyed in wrong three times.",
  fraud: "You reported this sign-in: it was stopped.",
  failed: "The call could not be placed.",
};

// The time left to key in a voice token's code.
const countdown = document.getElementById("countdown");
if (countdown) {
  const expiresAt = Number(countdown.dataset.expiresAt);
  const tick = () => {
    const left = Math.round(expiresAt - Date.now() / 1000);
    countdown.textContent = left > 0
      ? `The code works for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} more.`
      : "The code has expired.";
  };
  tick();
  setInterval(tick, 1000);
}

async function awaitAnswer(form) {
  const id = form.dataset.transaction;
  const waiting = document.getElementById("waiting");
  for (let tries = 0; tries < 30; tries++) {
    let state;
    try {
      const response = await fetch(`/api/v1/transactions/${encodeURIComponent(id)}?wait=25`, { cache: "no-store" });
      if (!response.ok) break;
      state = await response.json();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    if (state.status === "pending") continue;
    if (waiting) waiting.textContent = state.status === "approved" ? "Approved: signing you in…" : (CALL_ENDINGS[state.reason] || `The request was ${state.status}.`);
    HTMLFormElement.prototype.submit.call(form);
    return;
  }
  if (waiting) waiting.textContent = "No answer yet. Approve on your phone, then press the button.";
}

async function awaitPhone(form) {
  const serial = form.dataset.serial;
  const waiting = document.getElementById("waiting");
  const deadline = Date.now() + 15 * 60 * 1000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    try {
      const response = await fetch(`/portal/devices/status?serial=${encodeURIComponent(serial)}`, { cache: "no-store" });
      if (!response.ok) return;
      if ((await response.json()).ready) {
        if (waiting) waiting.textContent = "Your phone is added.";
        window.location.assign("/portal?done=ready");
        return;
      }
    } catch {
      // The server is out of reach for a moment: keep watching.
    }
  }
}

if (form) awaitAnswer(form);
const adding = document.querySelector("form[data-serial]");
if (adding) awaitPhone(adding);
