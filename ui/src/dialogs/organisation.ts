// Signing in to an organisation: the server, the user's name, password and second factor (or the
// help desk's registration code); then, as the server asks, an approval on another device (waited
// for here) or the code that was sent. Once accepted the app is the user's push device.

import * as api from "../api";
import { attempt, dialog, element } from "../dom";
import { added } from "./add";

const organisationDialog = dialog("organisation-dialog");
const submit = element<HTMLButtonElement>("organisation-submit");
const errorBox = element("organisation-error");
/** The challenge being answered, once the server asked for one. */
let pending: { transactionId: string; code: boolean } | null = null;

/** Opens the dialog empty. */
export function openOrganisation(): void {
  element<HTMLFormElement>("organisation-form").reset();
  errorBox.textContent = "";
  showStep(null);
  organisationDialog.showModal();
  element("organisation-server").focus();
}

function value(id: string): string {
  return element<HTMLInputElement>(id).value.trim();
}

/** Shows the first form (`step` null) or what the server asked for. */
function showStep(step: api.OrganisationStep | null): void {
  const asking = step !== null && step.step !== "enrolled";
  element("organisation-credentials").hidden = asking && step.step !== "enter_passcode";
  element("organisation-next").hidden = !asking;
  element("organisation-number").hidden = true;
  element("organisation-code-field").hidden = true;
  submit.disabled = false;
  submit.textContent = "Sign in";
  pending = null;
  if (!asking) return;
  element("organisation-prompt").textContent = sentence(step.message);
  if (step.step === "approve") {
    pending = { transactionId: step.transaction_id, code: false };
    if (step.number !== null) {
      element("organisation-number").textContent = `Choose ${step.number} on your device`;
      element("organisation-number").hidden = false;
    }
    submit.disabled = true;
    submit.textContent = "Waiting for approval…";
  } else if (step.step === "enter_sent_code") {
    pending = { transactionId: step.transaction_id, code: true };
    element("organisation-code-field").hidden = false;
    element("organisation-code").focus();
  } else {
    element<HTMLInputElement>("organisation-factor").value = "";
    element("organisation-factor").focus();
  }
}

function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Takes the server's answer: enrolled (done), or the next thing to ask. */
async function advance(step: api.OrganisationStep | undefined): Promise<void> {
  if (!step) {
    showStep(null);
    return;
  }
  if (step.step === "enrolled") {
    organisationDialog.close();
    await added(step.added);
    return;
  }
  showStep(step);
  if (step.step === "approve") {
    const server = value("organisation-server");
    const username = value("organisation-username");
    await advance(await attempt(() => api.continueOrganisationSignIn(server, username, step.transaction_id, null), errorBox));
  }
}

element("organisation-form").addEventListener("submit", async (event) => {
  const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
  if (submitter?.value !== "sign-in") return;
  event.preventDefault();
  const server = value("organisation-server");
  const username = value("organisation-username");
  submit.disabled = true;
  if (pending?.code) {
    const { transactionId } = pending;
    await advance(await attempt(() => api.continueOrganisationSignIn(server, username, transactionId, value("organisation-code")), errorBox));
    return;
  }
  const password = element<HTMLInputElement>("organisation-password").value;
  const factor = value("organisation-factor");
  await advance(
    await attempt(() => api.signInToOrganisation(server, username, password || null, factor || null), errorBox),
  );
});

element("empty-organisation").addEventListener("click", openOrganisation);
element("add-organisation").addEventListener("click", () => {
  element<HTMLDialogElement>("add-dialog").close();
  openOrganisation();
});
