// The lock screen: the passphrase, or the system key store, opens the vault; a login request
// waiting for the unlock is announced here.

import * as api from "../api";
import { showWaitingRequest } from "../dialogs/push";
import { attempt, element, show } from "../dom";
import { showTokens } from "./tokens";

/** Shows the lock screen for the vault (`status` when the caller already has it). */
export async function showUnlock(status?: api.VaultStatus): Promise<void> {
  const known = status ?? (await api.vaultStatus());
  show("unlock");
  element("vault-path").textContent = known.path;
  element("passphrase-field").hidden = !known.slots.includes("passphrase");
  const passphrase = element<HTMLInputElement>("passphrase");
  passphrase.value = "";
  (known.slots.includes("passphrase") ? passphrase : element("unlock-button")).focus();
  await showWaitingRequest();
}

/** Unlocks with `passphrase` (or the key store when null) and shows the tokens. */
export async function tryUnlock(passphrase: string | null): Promise<void> {
  const done = await attempt(() => api.unlock(passphrase).then(() => true), element("unlock-error"));
  if (done) await showTokens();
}

element("unlock-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = element<HTMLInputElement>("passphrase").value;
  await tryUnlock(value || null);
});
