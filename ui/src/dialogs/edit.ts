// Editing a token's issuer, account name and group; from here, deleting it or showing its QR code.

import * as api from "../api";
import { attempt, dialog, element } from "../dom";
import { refresh } from "../screens/tokens";
import { type TokenRow } from "../view";
import { confirmDelete } from "./delete";
import { openQr } from "./move-qr";

const editDialog = dialog("edit-dialog");
let editing: TokenRow | null = null;

/** Opens the edit dialog for `row`. */
export function openEdit(row: TokenRow): void {
  editing = row;
  element<HTMLInputElement>("edit-issuer").value = row.issuer ?? "";
  element<HTMLInputElement>("edit-label").value = row.label;
  element<HTMLInputElement>("edit-group").value = row.group ?? "";
  element("edit-error").textContent = "";
  editDialog.showModal();
  element("edit-issuer").focus();
}

element("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  const row = editing;
  const saved = await attempt(
    () =>
      api.editToken(
        row.id,
        element<HTMLInputElement>("edit-issuer").value,
        element<HTMLInputElement>("edit-label").value,
        element<HTMLInputElement>("edit-group").value,
      ),
    element("edit-error"),
  );
  if (saved) {
    if (editing === row) editDialog.close();
    await refresh();
  }
});

/** Closes the edit dialog and hands its token to `next` (delete, show QR). */
function fromEdit(next: (row: TokenRow) => void): () => void {
  return () => {
    if (!editing) return;
    editDialog.close();
    next(editing);
  };
}
element("edit-delete").addEventListener("click", fromEdit(confirmDelete));
element("edit-show-qr").addEventListener("click", fromEdit((row) => void openQr(row)));
