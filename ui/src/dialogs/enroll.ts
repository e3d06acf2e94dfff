// Enrolling a push device: where the link leads (host, issuer, account, server) is confirmed
// before anything is sent, and plain HTTP to another computer takes a second, red confirmation.

import * as api from "../api";
import { attempt, dialog, element } from "../dom";
import { added } from "./add";

const enrollDialog = dialog("enroll-dialog");
const enrollSubmit = element<HTMLButtonElement>("enroll-submit");
/** The link waiting (its code stays in the app's Rust side); `warned` once the red warning showed. */
let enrolling: { preview: api.EnrollmentPreview; warned: boolean } | null = null;

/** Asks whether to enroll with the link `preview` describes. */
export function askToEnroll(preview: api.EnrollmentPreview): void {
  enrolling = { preview, warned: false };
  element("enroll-host").textContent = preview.host;
  element("enroll-issuer").textContent = preview.issuer ?? "(not named)";
  element("enroll-account").textContent = preview.account ?? "(not named)";
  element("enroll-server").textContent = preview.server;
  element("enroll-cleartext").hidden = true;
  enrollSubmit.textContent = preview.cleartext ? "Continue" : "Enroll";
  enrollSubmit.classList.remove("danger");
  enrollDialog.returnValue = "";
  enrollDialog.showModal();
}

element("enroll-form").addEventListener("submit", async (event) => {
  const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
  const waiting = enrolling;
  if (submitter?.value !== "enroll" || !waiting) return;
  if (waiting.preview.cleartext && !waiting.warned) {
    event.preventDefault();
    waiting.warned = true;
    element("enroll-cleartext-text").textContent =
      ` ${waiting.preview.server} is reached by plain HTTP. Anyone on this network can read this enrollment ` +
      "and take over this push device. Enroll only if you are sure this network is yours.";
    element("enroll-cleartext").hidden = false;
    enrollSubmit.textContent = "Enroll over HTTP anyway";
    enrollSubmit.classList.add("danger");
    return;
  }
  enrolling = null;
  await added(await attempt(() => api.confirmEnrollment(waiting.warned)));
});

enrollDialog.addEventListener("close", () => {
  if (enrolling) {
    enrolling = null;
    void api.cancelEnrollment();
  }
});
