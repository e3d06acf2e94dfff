// Moving a token to another device: its QR code, shown only after the passphrase (and the PIN of
// a push token), and hidden again after a minute.

import * as api from "../api";
import { attempt, dialog, element } from "../dom";
import { subtitle, title, type TokenRow } from "../view";

const qrDialog = dialog("qr-dialog");
const qrImage = element<HTMLImageElement>("qr-image");
let qrRow: TokenRow | null = null;
let qrHide: number | undefined;


/** Opens the QR dialog for `row`, asking for what unlocks its QR code. */
export async function openQr(row: TokenRow): Promise<void> {
  qrRow = row;
  const status = await api.vaultStatus();
  element("qr-name").textContent = subtitle(row) ? `${title(row)} (${subtitle(row)})` : title(row);
  element("qr-passphrase-field").hidden = !status.slots.includes("passphrase");
  element("qr-pin-field").hidden = row.code.state !== "pin_required";
  element("qr-form").hidden = false;
  element("qr-error").textContent = "";
  qrDialog.showModal();
  const first = [element("qr-passphrase-field"), element("qr-pin-field")].find((field) => !field.hidden);
  (first?.querySelector("input") ?? element("qr-show")).focus();
}

element("qr-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const row = qrRow;
  if (!row) return;
  const passphrase = element<HTMLInputElement>("qr-passphrase");
  const pin = element<HTMLInputElement>("qr-pin");
  const shown = await attempt(() => api.tokenQr(row.id, passphrase.value, pin.value), element("qr-error"));
  passphrase.value = "";
  pin.value = "";
  if (!shown) return;
  element("qr-form").hidden = true;
  qrImage.src = shown.image;
  qrImage.hidden = false;
  element("qr-hint").hidden = false;
  window.clearTimeout(qrHide);
  qrHide = window.setTimeout(() => qrDialog.close(), 60_000);
});

qrDialog.addEventListener("close", () => {
  window.clearTimeout(qrHide);
  qrImage.removeAttribute("src");
  qrImage.hidden = true;
  element("qr-hint").hidden = true;
  qrRow = null;
});
