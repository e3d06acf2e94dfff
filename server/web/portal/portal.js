// Tessera portal: the one script, for live status. While a push approval is awaited it waits on
// the transaction and continues as soon as the phone answers; while a new phone is being added it
// watches for the phone's registration. Without it, the page's button does the same.

const form = document.querySelector("form[data-transaction]");

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
    if (waiting) waiting.textContent = state.status === "approved" ? "Approved: signing you in…" : `The request was ${state.status}.`;
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
