// Deleting a token, after a confirmation that says the code cannot be recovered.

import * as api from "../api";
import { attempt, dialog, element, toast } from "../dom";
import { refresh } from "../screens/tokens";
import { subtitle, title, type TokenRow } from "../view";

const confirmDialog = dialog("confirm-dialog");
let deleting: TokenRow | null = null;

/** Asks whether to delete `row`; deletes it on "Delete". */
export function confirmDelete(row: TokenRow): void {
  deleting = row;
  element("confirm-text").textContent =
    `${title(row)}${subtitle(row) ? ` (${subtitle(row)})` : ""} will be removed from this vault. ` +
    "Make sure you can still log in to it another way: the code cannot be recovered.";
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
}

confirmDialog.addEventListener("close", async () => {
  const row = deleting;
  deleting = null;
  if (confirmDialog.returnValue !== "delete" || !row) return;
  const removed = await attempt(() => api.removeToken(row.id).then(() => true));
  if (removed) {
    toast(`Deleted ${title(row)}.`);
    await refresh();
  }
});
