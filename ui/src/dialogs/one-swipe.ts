// One Swipe: a signed, single-use QR code for a login screen's camera, replaced 5 s before it
// expires for as long as the dialog is open; a push token guarded by the PIN asks for it first.

import * as api from "../api";
import { dialog, element } from "../dom";
import { showUnlock } from "../screens/unlock";
import { asCommandError, oneSwipeRefreshInMs, title, type TokenRow } from "../view";

const oneSwipeDialog = dialog("oneswipe-dialog");
const oneSwipeImage = element<HTMLImageElement>("oneswipe-qr");
let oneSwipeRow: TokenRow | null = null;
let oneSwipePin: string | null = null;
let oneSwipeRefresh: number | undefined;
let oneSwipeCountdown: number | undefined;

/** Opens the One Swipe dialog for the push token `row`. */
export async function openOneSwipe(row: TokenRow): Promise<void> {
  oneSwipeRow = row;
  oneSwipePin = null;
  element("oneswipe-name").textContent = title(row);
  oneSwipeDialog.showModal();
  await showOneSwipe();
}

/** Shows a fresh code, and schedules the next one 5 s before this one expires. */
async function showOneSwipe(): Promise<void> {
  window.clearTimeout(oneSwipeRefresh);
  window.clearInterval(oneSwipeCountdown);
  const row = oneSwipeRow;
  if (!row || !oneSwipeDialog.open) return;
  const errorBox = element("oneswipe-error");
  const pinForm = element("oneswipe-pin-form");
  let view: api.OneSwipeView;
  try {
    view = await api.oneSwipe(row.id, oneSwipePin);
  } catch (thrown) {
    const error = asCommandError(thrown);
    oneSwipeImage.hidden = true;
    element("oneswipe-countdown").textContent = "";
    if (error.kind === "locked" && (await api.vaultStatus()).unlocked) {
      oneSwipePin = null;
      pinForm.hidden = false;
      errorBox.textContent = error.message;
      element("oneswipe-pin").focus();
    } else if (error.kind === "locked") {
      oneSwipeDialog.close();
      await showUnlock();
    } else {
      errorBox.textContent = error.message;
    }
    return;
  }
  pinForm.hidden = true;
  errorBox.textContent = "";
  oneSwipeImage.src = view.image;
  oneSwipeImage.hidden = false;
  const shownAt = performance.now();
  const countdown = () => {
    const left = Math.max(0, Math.ceil(view.seconds_left - (performance.now() - shownAt) / 1000));
    element("oneswipe-countdown").textContent = `Valid for ${left} s`;
  };
  countdown();
  oneSwipeCountdown = window.setInterval(countdown, 1000);
  oneSwipeRefresh = window.setTimeout(() => void showOneSwipe(), oneSwipeRefreshInMs(view.seconds_left));
}

element("oneswipe-pin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const pin = element<HTMLInputElement>("oneswipe-pin");
  oneSwipePin = pin.value;
  pin.value = "";
  void showOneSwipe();
});

oneSwipeDialog.addEventListener("close", () => {
  window.clearTimeout(oneSwipeRefresh);
  window.clearInterval(oneSwipeCountdown);
  oneSwipeImage.removeAttribute("src");
  oneSwipeImage.hidden = true;
  oneSwipeRow = null;
  oneSwipePin = null;
});
