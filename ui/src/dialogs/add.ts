// Adding tokens: an otpauth or enrollment link, the manual form, a QR image (chosen, dropped or
// pasted) or the camera. An enrollment link goes to the enrollment dialog before anything is sent.

import * as api from "../api";
import { attempt, dialog, element, showing, toast } from "../dom";
import { refresh } from "../screens/tokens";
import { title } from "../view";
import { startCamera, stopCamera } from "./camera";
import { askToEnroll } from "./enroll";
import { checkPush } from "./push";

const addDialog = dialog("add-dialog");
let addTab = "link";

/** Opens the add dialog on its first tab. */
export function openAdd(): void {
  element<HTMLFormElement>("add-form").reset();
  element("add-error").textContent = "";
  selectTab("link");
  addDialog.showModal();
  element("add-uri").focus();
}

function selectTab(tab: string): void {
  addTab = tab;
  for (const button of addDialog.querySelectorAll<HTMLElement>("[role=tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  for (const panel of addDialog.querySelectorAll<HTMLElement>(".tab-panel")) {
    panel.hidden = panel.dataset.panel !== tab;
  }
  element<HTMLButtonElement>("add-submit").hidden = tab === "image" || tab === "camera";
  if (tab === "camera") void startCamera();
  else void stopCamera();
}

for (const button of addDialog.querySelectorAll<HTMLElement>("[role=tab]")) {
  button.addEventListener("click", () => selectTab(button.dataset.tab ?? "link"));
}

/** The trimmed value of input `id`, or null when it is empty. */
export function optional(id: string): string | null {
  const value = element<HTMLInputElement>(id).value.trim();
  return value.length > 0 ? value : null;
}

/** Closes the dialog and reports what was added (or asks about an enrollment link). */
export async function added(result: api.Added | undefined): Promise<void> {
  if (!result) return;
  addDialog.close();
  if (result.enrollment) {
    askToEnroll(result.enrollment);
    return;
  }
  const names = result.tokens.map((t) => (t.push ? `${title(t)} as a push device` : title(t)));
  toast([`Added ${names.join(", ")}.`, ...result.warnings].join(" "));
  await refresh();
  await checkPush();
}

element("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorBox = element("add-error");
  const group = optional("add-group");
  if (addTab === "link") {
    await added(await attempt(() => api.addUri(element<HTMLTextAreaElement>("add-uri").value, group), errorBox));
  } else if (addTab === "manual") {
    const number = (id: string) => Number(element<HTMLInputElement>(id).value);
    const form: api.ManualForm = {
      issuer: optional("manual-issuer"),
      label: element<HTMLInputElement>("manual-label").value,
      secret: element<HTMLInputElement>("manual-secret").value,
      kind: element<HTMLSelectElement>("manual-kind").value as api.ManualForm["kind"],
      algorithm: element<HTMLSelectElement>("manual-algorithm").value as api.ManualForm["algorithm"],
      digits: number("manual-digits"),
      period: number("manual-period"),
      counter: number("manual-counter"),
      group,
    };
    await added(await attempt(() => api.addManual(form), errorBox));
  }
});

async function addFromFile(file: File | undefined | null): Promise<void> {
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  await added(await attempt(() => api.addImage(bytes), element("add-error")));
}

addDialog.addEventListener("close", () => void stopCamera());

element<HTMLInputElement>("add-image").addEventListener("change", (event) => {
  void addFromFile((event.target as HTMLInputElement).files?.[0]);
});
const dropZone = element("drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("over");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  void addFromFile(event.dataTransfer?.files[0]);
});
document.addEventListener("paste", (event) => {
  const image = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (!image || !showing("tokens")) return;
  event.preventDefault();
  if (!addDialog.open) openAdd();
  selectTab("image");
  void addFromFile(image);
});

element("add-button").addEventListener("click", openAdd);
element("empty-add").addEventListener("click", openAdd);
