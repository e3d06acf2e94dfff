// Push: login requests waiting for an answer. The approval dialog shows who is logging in where,
// asks for the number (picked or typed) and, for a PIN-guarded token, the PIN; "not me" denies and
// reports. On the lock screen a waiting request is announced; it opens after the unlock.

import { listen } from "@tauri-apps/api/event";

import * as api from "../api";
import { closeDialogs, dialog, element, showing, toast } from "../dom";
import { listedToken, refresh } from "../screens/tokens";
import { showUnlock } from "../screens/unlock";
import {
  asCommandError,
  nextRequest,
  numberPrompt,
  requestContext,
  requestHeadline,
  typedNumber,
  type PushRequest,
} from "../view";

const pushDialog = dialog("push-dialog");
let pushRequest: PushRequest | null = null;
/** Requests the user closed without answering: they are not opened again (they expire soon). */
const dismissedRequests = new Set<string>();
let answering = false;
let pushShownAt = 0;
let pushCountdown: number | undefined;

/** Opens the approval dialog for the next waiting request, and shows whether push is connected. */
export async function checkPush(): Promise<void> {
  const status = await api.pushStatus().catch(() => null);
  if (!status || !showing("tokens")) return;
  element("push-offline").hidden = status.devices === 0 || status.connected;
  const next = nextRequest(status.requests.filter((r) => !dismissedRequests.has(r.transaction_id)));
  if (next && !pushDialog.open) openPush(next);
}

/** On the lock screen: says that a login request waits for the unlock. */

export async function showWaitingRequest(): Promise<void> {
  const status = await api.pushStatus().catch(() => null);
  const next = status ? nextRequest(status.requests) : null;
  const notice = element("push-waiting");
  notice.hidden = next === null;
  if (next) notice.textContent = `${requestHeadline(next)}. Unlock to approve or deny.`;
}


function openPush(request: PushRequest): void {
  closeDialogs(pushDialog);
  pushRequest = request;
  pushShownAt = performance.now();
  element("push-headline").textContent = requestHeadline(request);
  element("push-context").replaceChildren(
    ...requestContext(request).flatMap(([label, value]) => [
      Object.assign(document.createElement("dt"), { textContent: label }),
      Object.assign(document.createElement("dd"), { textContent: value }),
    ]),
  );
  element("push-prompt").textContent = numberPrompt(request);
  const choices = element("push-choices");
  choices.hidden = request.number_matching !== "pick";
  choices.replaceChildren(
    ...request.number_choices.map((number) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(number);
      button.setAttribute("aria-label", `Approve with ${number}`);
      button.addEventListener("click", () => void answerPush("approve", number));
      return button;
    }),
  );
  element("push-type").hidden = request.number_matching !== "type";
  element<HTMLInputElement>("push-number").value = "";
  element("push-approve").hidden = request.number_matching === "pick";
  const guarded = listedToken(request.token_id)?.code.state === "pin_required";
  element("push-pin-field").hidden = !guarded;
  element<HTMLInputElement>("push-pin").value = "";
  element("push-error").textContent = "";
  if (!pushDialog.open) pushDialog.showModal();
  const first = request.number_matching === "type" ? "push-number" : guarded ? "push-pin" : "push-deny";
  element(first).focus();
  window.clearInterval(pushCountdown);
  pushTick();
  pushCountdown = window.setInterval(pushTick, 1000);
}

function pushTick(): void {
  if (!pushRequest) return;
  const left = Math.max(0, Math.ceil(pushRequest.seconds_left - (performance.now() - pushShownAt) / 1000));
  element("push-countdown").textContent = `Expires in ${left} s`;
  if (left === 0) {
    pushDialog.close();
    toast("The login request expired.");
  }
}

async function answerPush(reply: api.Reply, picked?: number): Promise<void> {
  const request = pushRequest;
  if (!request || answering) return;
  const errorBox = element("push-error");
  let number: number | null = null;
  if (reply === "approve" && request.number_matching === "pick") number = picked ?? null;
  if (reply === "approve" && request.number_matching === "type") {
    number = typedNumber(element<HTMLInputElement>("push-number").value);
    if (number === null) {
      errorBox.textContent = "Type the number the login screen shows.";
      element("push-number").focus();
      return;
    }
  }
  const pinField = element<HTMLInputElement>("push-pin");
  const pin = element("push-pin-field").hidden ? null : pinField.value;
  for (const button of pushDialog.querySelectorAll("button")) button.disabled = true;
  answering = true;
  try {
    errorBox.textContent = "";
    const answered = await api.answerPush(request.transaction_id, reply, number, pin);
    dismissedRequests.add(request.transaction_id);
    if (pushRequest === request) pushDialog.close();
    toast(
      answered.status === "approved"
        ? `Approved: ${request.username} is logging in to ${request.service}.`
        : reply === "not_me"
          ? "Denied and reported. Change your password: someone else knows it."
          : "Denied.",
    );
  } catch (thrown) {
    const error = asCommandError(thrown);
    if (pushRequest !== request) {
      toast(error.message, "error");
    } else if (error.kind === "expired") {
      pushDialog.close();
      toast(error.message);
    } else if (error.kind === "locked" && (await api.vaultStatus()).unlocked) {
      element("push-pin-field").hidden = false;
      pinField.value = "";
      pinField.focus();
      errorBox.textContent = error.message;
    } else if (error.kind === "locked") {
      pushDialog.close();
      await showUnlock();
    } else {
      errorBox.textContent = error.message;
    }
  } finally {
    answering = false;
    for (const button of pushDialog.querySelectorAll("button")) button.disabled = false;
  }
  await refresh();
}

element("push-approve").addEventListener("click", () => void answerPush("approve"));
element("push-deny").addEventListener("click", () => void answerPush("deny"));
element("push-not-me").addEventListener("click", () => void answerPush("not_me"));
element("push-number").addEventListener("keydown", (event) => {
  if (event.key === "Enter") void answerPush("approve");
});
pushDialog.addEventListener("close", () => {
  window.clearInterval(pushCountdown);
  element<HTMLInputElement>("push-pin").value = "";
  if (pushRequest) dismissedRequests.add(pushRequest.transaction_id);
  pushRequest = null;
  if (showing("tokens")) window.setTimeout(() => void checkPush(), 300);
});

void listen<PushRequest>("push-request", async () => {
  if (showing("unlock")) await showWaitingRequest();
  else if (showing("tokens")) await checkPush();
});
window.setInterval(() => {
  if (showing("tokens")) void checkPush();
  else if (showing("unlock")) void showWaitingRequest();
}, 5000);


/** Forgets the request on screen without dismissing it (the vault locked: it opens again after the unlock). */
export function forgetShownRequest(): void {
  pushRequest = null;
}
