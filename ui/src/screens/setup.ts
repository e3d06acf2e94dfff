// The first run: create the vault, unlocked by the system key store, a passphrase, or both.

import * as api from "../api";
import { attempt, element, show } from "../dom";
import { createFormProblem } from "../view";
import { showTokens } from "./tokens";

/** Shows the create-vault form. */
export function showSetup(): void {
  show("setup");
  element("use-keystore").focus();
}

element("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const useKeystore = element<HTMLInputElement>("use-keystore").checked;
  const passphrase = element<HTMLInputElement>("new-passphrase").value;
  const confirm = element<HTMLInputElement>("confirm-passphrase").value;
  const problem = createFormProblem(useKeystore, passphrase, confirm);
  const errorBox = element("create-error");
  if (problem) {
    errorBox.textContent = problem;
    return;
  }
  const button = element<HTMLButtonElement>("create-vault");
  button.disabled = true;
  const done = await attempt(
    () => api.createVault(useKeystore, passphrase || null).then(() => true),
    errorBox,
  );
  button.disabled = false;
  if (done) await showTokens();
});

element<HTMLInputElement>("use-keystore").addEventListener("change", (event) => {
  const checked = (event.target as HTMLInputElement).checked;
  element("passphrase-optional").textContent = checked
    ? "(optional: also lets you open the vault elsewhere)"
    : "(required)";
});
