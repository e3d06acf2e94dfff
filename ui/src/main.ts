// The desktop app's screens: create or unlock the vault, then the token list with live codes.
// State lives in Rust (src-tauri); this file draws it with the pure rules of view.ts and turns
// clicks and keys into commands (api.ts).

import { Channel } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";

import * as api from "./api";
import {
  asCommandError,
  avatarColor,
  issuerIcon,
  type IssuerIcon,
  createFormProblem,
  formatCode,
  fractionLeft,
  initials,
  moveSelection,
  msToNextSecond,
  nextRequest,
  numberPrompt,
  oneSwipeRefreshInMs,
  requestContext,
  requestHeadline,
  secondsLeft,
  sections,
  stepChanged,
  subtitle,
  title,
  typedNumber,
  type PushRequest,
  type SortOrder,
  type TokenRow,
} from "./view";

/** How often the user's activity is reported (it postpones the auto-lock). */
const ACTIVITY_EVERY_MS = 10_000;
/** How long a counter-based code taken on request stays on screen. */
const ON_REQUEST_CODE_MS = 30_000;
/** Where sort order is remembered (not a secret). */
const SORT_KEY = "tessera.sort";
/** How long after each whole second the countdowns are redrawn, so the app's clock (read in whole seconds) is surely past it. */
const TICK_MARGIN_MS = 40;

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

const screens = {
  setup: element("setup-screen"),
  unlock: element("unlock-screen"),
  tokens: element("tokens-screen"),
};
const list = element("token-list");
const search = element<HTMLInputElement>("search");
const sort = element<HTMLSelectElement>("sort");
const toastBox = element("toast");

let rows: TokenRow[] = [];
/** When `rows` were asked for (Unix milliseconds): their codes are of that moment's step or a later one. */
let fetchedAt = Date.now();
let selected = -1;
/** Codes of counter-based tokens taken on request, until they are hidden again. */
const takenCodes = new Map<string, { code: string; until: number }>();

function show(screen: keyof typeof screens): void {
  for (const [name, section] of Object.entries(screens)) section.hidden = name !== screen;
  if (screen !== "tokens") {
    rows = [];
    takenCodes.clear();
    list.replaceChildren();
  }
}

let toastTimer: number | undefined;
function toast(message: string, kind: "info" | "error" = "info"): void {
  toastBox.textContent = message;
  toastBox.className = kind;
  toastBox.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (toastBox.hidden = true), kind === "error" ? 6000 : 3500);
}

/** Runs a command; a `locked` failure goes back to the unlock screen, others are shown. */
async function attempt<T>(action: () => Promise<T>, errorBox?: HTMLElement): Promise<T | undefined> {
  try {
    if (errorBox) errorBox.textContent = "";
    return await action();
  } catch (thrown) {
    const error = asCommandError(thrown);
    if (error.kind === "locked" && !screens.tokens.hidden && !(await api.vaultStatus()).unlocked) {
      await showUnlock();
      toast("Tessera locked the vault.");
    } else if (errorBox) {
      errorBox.textContent = error.message;
    } else {
      toast(error.message, "error");
    }
    return undefined;
  }
}

// ---- First run and unlock ----

async function start(): Promise<void> {
  const status = await api.vaultStatus();
  if (!status.exists) {
    show("setup");
    element("use-keystore").focus();
  } else if (status.unlocked) {
    await showTokens();
  } else {
    await showUnlock(status);
    if (status.slots.includes("os-keystore")) await tryUnlock(null);
  }
}

async function showUnlock(status?: api.VaultStatus): Promise<void> {
  const known = status ?? (await api.vaultStatus());
  show("unlock");
  element("vault-path").textContent = known.path;
  element("passphrase-field").hidden = !known.slots.includes("passphrase");
  const passphrase = element<HTMLInputElement>("passphrase");
  passphrase.value = "";
  (known.slots.includes("passphrase") ? passphrase : element("unlock-button")).focus();
  await showWaitingRequest();
}

async function tryUnlock(passphrase: string | null): Promise<void> {
  const done = await attempt(() => api.unlock(passphrase).then(() => true), element("unlock-error"));
  if (done) await showTokens();
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

element("unlock-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = element<HTMLInputElement>("passphrase").value;
  await tryUnlock(value || null);
});

// ---- The token list ----

async function showTokens(): Promise<void> {
  show("tokens");
  sort.value = localStorage.getItem(SORT_KEY) ?? "name";
  await refresh();
  search.focus();
  await checkPush();
}

async function refresh(): Promise<void> {
  const asked = Date.now();
  const fresh = await attempt(api.listTokens);
  if (!fresh) return;
  rows = fresh;
  fetchedAt = asked;
  draw();
}

function shownCode(row: TokenRow): string | null {
  if (row.code.state === "live") return row.code.code;
  const taken = takenCodes.get(row.id);
  return taken && taken.until > Date.now() ? taken.code : null;
}

/** A brand's icon as an inline SVG, in its readable colour on the avatar's brand colour. */
function iconImage(icon: IssuerIcon): SVGSVGElement {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.classList.add("brand");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", icon.path);
  path.setAttribute("fill", icon.glyph);
  svg.append(path);
  svg.dataset.brand = icon.title;
  return svg;
}

function tokenCard(row: TokenRow): HTMLElement {
  const card = document.createElement("article");
  card.className = "token";
  card.setAttribute("role", "listitem");
  card.tabIndex = -1;
  card.dataset.id = row.id;

  const avatar = document.createElement("div");
  avatar.className = "avatar";
  avatar.style.setProperty("background-color", avatarColor(title(row)));
  avatar.setAttribute("aria-hidden", "true");
  const icon = issuerIcon(title(row));
  if (icon) avatar.append(iconImage(icon));
  else avatar.textContent = initials(title(row));

  const names = document.createElement("div");
  names.className = "names";
  const issuer = document.createElement("div");
  issuer.className = "issuer";
  issuer.textContent = title(row);
  const label = document.createElement("div");
  label.className = "label";
  label.textContent = subtitle(row);
  names.append(issuer, label);
  if (row.push) {
    const swipe = document.createElement("button");
    swipe.className = "oneswipe-button";
    swipe.textContent = "One Swipe";
    swipe.title = "Show a One Swipe code for a login screen's camera";
    swipe.addEventListener("click", () => void openOneSwipe(row));
    names.append(swipe);
  }

  const codeBox = document.createElement("div");
  codeBox.className = "code-box";
  const code = shownCode(row);
  const codeButton = document.createElement("button");
  codeButton.className = "code";
  if (row.code.state === "pin_required") {
    codeButton.textContent = "PIN needed";
    codeButton.disabled = true;
    codeButton.title = "This push token's codes approve logins, so they are guarded by the vault's PIN";
  } else if (code === null) {
    codeButton.textContent = "Show code";
    codeButton.classList.add("on-request");
    codeButton.title = "Take the next code";
    codeButton.addEventListener("click", () => void takeOnRequest(row));
  } else {
    codeButton.textContent = formatCode(code);
    codeButton.dataset.code = code;
    codeButton.title = "Copy (Enter)";
    codeButton.setAttribute("aria-label", `Copy code for ${title(row)}`);
    codeButton.addEventListener("click", () => void copy(row));
  }
  codeBox.append(codeButton);
  if (row.code.state === "live") {
    const next = document.createElement("div");
    next.className = "next";
    next.textContent = `next ${formatCode(row.code.next)}`;
    codeBox.append(next);
  }

  const timer = document.createElement("div");
  timer.className = "timer";
  if (row.code.state === "live") {
    timer.innerHTML =
      '<svg viewBox="0 0 36 36" aria-hidden="true"><circle class="track" cx="18" cy="18" r="15.9"/><circle class="ring" cx="18" cy="18" r="15.9"/></svg><span class="seconds"></span>';
  }

  const menu = document.createElement("button");
  menu.className = "menu icon-button";
  menu.title = "Edit or delete";
  menu.setAttribute("aria-label", `Edit or delete ${title(row)}`);
  menu.innerHTML =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="5" cy="12" r="1.5"/><circle cx="12" cy="12" r="1.5"/><circle cx="19" cy="12" r="1.5"/></svg>';
  menu.addEventListener("click", () => openEdit(row));

  card.append(avatar, names, codeBox, timer, menu);
  card.addEventListener("focus", () => {
    selected = visibleCards().indexOf(card);
  });
  return card;
}

function draw(): void {
  const shown = sections(rows, search.value, sort.value as SortOrder);
  const fragment = document.createDocumentFragment();
  for (const section of shown) {
    if (section.group !== null || shown.length > 1) {
      const heading = document.createElement("h3");
      heading.className = "group";
      heading.textContent = section.group ?? "No group";
      fragment.append(heading);
    }
    for (const row of section.rows) fragment.append(tokenCard(row));
  }
  const focusedId = (document.activeElement as HTMLElement | null)?.dataset?.id;
  list.replaceChildren(fragment);
  element("empty-state").hidden = rows.length > 0;
  element("no-match").hidden = rows.length === 0 || shown.length > 0;
  const groups = [...new Set(rows.flatMap((r) => (r.group ? [r.group] : [])))];
  element("group-names").replaceChildren(...groups.map((g) => Object.assign(document.createElement("option"), { value: g })));
  if (focusedId) list.querySelector<HTMLElement>(`[data-id="${focusedId}"]`)?.focus();
  tick();
}

/** Updates countdowns without fetching; fetches the list again when a shown code belongs to a past step. */
function tick(): void {
  const now = Date.now();
  if (stepChanged(rows, fetchedAt, now)) {
    void refresh();
    return;
  }
  for (const card of visibleCards()) {
    const row = rows.find((r) => r.id === card.dataset.id);
    if (!row || row.code.state !== "live") continue;
    const left = secondsLeft(row.code, now);
    const seconds = card.querySelector(".seconds");
    if (seconds) seconds.textContent = String(left);
    const ring = card.querySelector<SVGCircleElement>(".ring");
    ring?.style.setProperty("stroke-dashoffset", String(100 * (1 - fractionLeft(row.code, now))));
    card.classList.toggle("expiring", left <= 5);
  }
}
/** Ticks just after each whole second of the wall clock, where countdowns change and codes with them. */
function tickEverySecond(): void {
  window.setTimeout(() => {
    if (!screens.tokens.hidden) tick();
    tickEverySecond();
  }, msToNextSecond(Date.now()) + TICK_MARGIN_MS);
}
tickEverySecond();

function visibleCards(): HTMLElement[] {
  return [...list.querySelectorAll<HTMLElement>(".token")];
}

async function copy(row: TokenRow): Promise<void> {
  const copied = await attempt(() => api.copyCode(row.id));
  if (copied) toast(`Copied the code for ${title(row)}. The clipboard clears in ${copied.clears_in_secs} s.`);
}

async function takeOnRequest(row: TokenRow): Promise<void> {
  const code = await attempt(() => api.takeCode(row.id));
  if (code === undefined) return;
  takenCodes.set(row.id, { code, until: Date.now() + ON_REQUEST_CODE_MS });
  window.setTimeout(draw, ON_REQUEST_CODE_MS + 100);
  await refresh();
}

search.addEventListener("input", () => {
  selected = -1;
  draw();
});
sort.addEventListener("change", () => {
  localStorage.setItem(SORT_KEY, sort.value);
  draw();
});
element("lock-button").addEventListener("click", () => void lockNow());
window.addEventListener("focus", () => {
  if (!screens.tokens.hidden) void refresh().then(checkPush);
});

async function lockNow(): Promise<void> {
  await api.lock();
  await showUnlock();
}

// ---- Adding ----

const addDialog = element<HTMLDialogElement>("add-dialog");
let addTab = "link";

function openAdd(): void {
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

function optional(id: string): string | null {
  const value = element<HTMLInputElement>(id).value.trim();
  return value.length > 0 ? value : null;
}

async function added(result: api.Added | undefined): Promise<void> {
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

// The camera tab: a live preview while the app looks for a QR code in each frame.
const cameraSelect = element<HTMLSelectElement>("camera-select");
const cameraPreview = element<HTMLImageElement>("camera-preview");
const cameraStatus = element("camera-status");
const cameraToggle = element<HTMLButtonElement>("camera-toggle");
let cameraScanning = false;
/** Set when the user leaves the camera tab before the scan reached the app. */
let cameraCancelled = false;
let cameraRun: Promise<void> = Promise.resolve();

function startCamera(): Promise<void> {
  if (cameraScanning) return cameraRun;
  cameraScanning = true;
  cameraCancelled = false;
  cameraRun = scanWithCamera().finally(() => {
    cameraScanning = false;
  });
  return cameraRun;
}

async function scanWithCamera(): Promise<void> {
  if (cameraSelect.options.length === 0) {
    const cameras = (await attempt(api.listCameras)) ?? [];
    cameraSelect.replaceChildren(
      ...cameras.map((c) => Object.assign(document.createElement("option"), { value: String(c.index), textContent: c.name })),
    );
    if (cameras.length === 0) {
      cameraStatus.textContent = "No camera found. Open a picture of the QR code in the QR image tab instead.";
      cameraToggle.hidden = true;
      return;
    }
  }
  cameraToggle.hidden = false;
  cameraToggle.textContent = "Stop";
  cameraStatus.textContent = "Hold the QR code up to the camera…";
  const preview = new Channel<string>();
  preview.onmessage = (frame) => {
    const next = new Image();
    next.src = frame;
    void next
      .decode()
      .then(() => {
        if (!cameraScanning) return;
        cameraPreview.src = frame;
        cameraPreview.hidden = false;
      })
      .catch(() => undefined);
  };
  if (cameraCancelled) return;
  const result = await attempt(
    () => api.scanCamera(Number(cameraSelect.value), optional("add-group"), preview),
    element("add-error"),
  );
  cameraToggle.textContent = "Scan again";
  if (result) await added(result);
  else if (result === null) cameraStatus.textContent = "Stopped.";
  else cameraStatus.textContent = "";
}

async function stopCamera(): Promise<void> {
  cameraPreview.hidden = true;
  cameraPreview.removeAttribute("src");
  if (!cameraScanning) return;
  cameraCancelled = true;
  await api.stopCamera().catch(() => undefined);
}

cameraToggle.addEventListener("click", () => void (cameraScanning ? stopCamera() : startCamera()));
cameraSelect.addEventListener("change", async () => {
  await stopCamera();
  await cameraRun;
  void startCamera();
});
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
  if (!image || screens.tokens.hidden) return;
  event.preventDefault();
  if (!addDialog.open) openAdd();
  selectTab("image");
  void addFromFile(image);
});

element("add-button").addEventListener("click", openAdd);
element("empty-add").addEventListener("click", openAdd);

// ---- Editing and deleting ----

const editDialog = element<HTMLDialogElement>("edit-dialog");
let editing: TokenRow | null = null;

function openEdit(row: TokenRow): void {
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

// ---- Moving a token: its QR code, behind the passphrase ----

const qrDialog = element<HTMLDialogElement>("qr-dialog");
const qrImage = element<HTMLImageElement>("qr-image");
let qrRow: TokenRow | null = null;
let qrHide: number | undefined;

async function openQr(row: TokenRow): Promise<void> {
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
qrDialog.querySelector(".cancel")?.addEventListener("click", () => qrDialog.close());

const confirmDialog = element<HTMLDialogElement>("confirm-dialog");
let deleting: TokenRow | null = null;

function confirmDelete(row: TokenRow): void {
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

for (const dialog of [addDialog, editDialog]) {
  dialog.querySelector(".cancel")?.addEventListener("click", () => dialog.close());
}

// ---- Enrollment: confirm where a link leads before anything is sent ----

const enrollDialog = element<HTMLDialogElement>("enroll-dialog");
const enrollSubmit = element<HTMLButtonElement>("enroll-submit");
/** The link waiting (its code stays in the app's Rust side); `warned` once the red warning showed. */
let enrolling: { preview: api.EnrollmentPreview; warned: boolean } | null = null;

function askToEnroll(preview: api.EnrollmentPreview): void {
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

// ---- One Swipe ----

const oneSwipeDialog = element<HTMLDialogElement>("oneswipe-dialog");
const oneSwipeImage = element<HTMLImageElement>("oneswipe-qr");
let oneSwipeRow: TokenRow | null = null;
let oneSwipePin: string | null = null;
let oneSwipeRefresh: number | undefined;
let oneSwipeCountdown: number | undefined;

async function openOneSwipe(row: TokenRow): Promise<void> {
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
oneSwipeDialog.querySelector(".cancel")?.addEventListener("click", () => oneSwipeDialog.close());

// ---- Push: login requests ----

const pushDialog = element<HTMLDialogElement>("push-dialog");
let pushRequest: PushRequest | null = null;
/** Requests the user closed without answering: they are not opened again (they expire soon). */
const dismissedRequests = new Set<string>();
let answering = false;
let pushShownAt = 0;
let pushCountdown: number | undefined;

/** Opens the approval dialog for the next waiting request, and shows whether push is connected. */
async function checkPush(): Promise<void> {
  const status = await api.pushStatus().catch(() => null);
  if (!status || screens.tokens.hidden) return;
  element("push-offline").hidden = status.devices === 0 || status.connected;
  const next = nextRequest(status.requests.filter((r) => !dismissedRequests.has(r.transaction_id)));
  if (next && !pushDialog.open) openPush(next);
}

/** On the lock screen: says that a login request waits for the unlock. */
async function showWaitingRequest(): Promise<void> {
  const status = await api.pushStatus().catch(() => null);
  const next = status ? nextRequest(status.requests) : null;
  const notice = element("push-waiting");
  notice.hidden = next === null;
  if (next) notice.textContent = `${requestHeadline(next)}. Unlock to approve or deny.`;
}

function openPush(request: PushRequest): void {
  for (const dialog of dialogs) if (dialog !== pushDialog) dialog.close();
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
  const guarded = rows.find((r) => r.id === request.token_id)?.code.state === "pin_required";
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
  if (!screens.tokens.hidden) window.setTimeout(() => void checkPush(), 300);
});

void listen<PushRequest>("push-request", async () => {
  if (!screens.unlock.hidden) await showWaitingRequest();
  else if (!screens.tokens.hidden) await checkPush();
});
window.setInterval(() => {
  if (!screens.tokens.hidden) void checkPush();
  else if (!screens.unlock.hidden) void showWaitingRequest();
}, 5000);

// ---- Keyboard and activity ----

/** Every dialog: the keyboard shortcuts pause while one is open, and locking closes them all. */
const dialogs = [addDialog, editDialog, confirmDialog, enrollDialog, oneSwipeDialog, pushDialog, qrDialog];

function anyDialogOpen(): boolean {
  return dialogs.some((dialog) => dialog.open);
}

document.addEventListener("keydown", (event) => {
  if (screens.tokens.hidden || anyDialogOpen()) return;
  const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement;
  const cards = visibleCards();
  const focus = (index: number) => {
    selected = index;
    cards[index]?.focus();
  };
  const current = cards[selected];
  const row = current ? rows.find((r) => r.id === current.dataset.id) : undefined;
  const ctrl = event.ctrlKey || event.metaKey;
  if (ctrl && event.key.toLowerCase() === "n") {
    event.preventDefault();
    openAdd();
  } else if (ctrl && event.key.toLowerCase() === "l") {
    event.preventDefault();
    void lockNow();
  } else if ((ctrl && event.key.toLowerCase() === "f") || (event.key === "/" && !typing)) {
    event.preventDefault();
    search.focus();
    search.select();
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    focus(moveSelection(typing ? -1 : selected, event.key === "ArrowDown" ? 1 : -1, cards.length));
  } else if (event.key === "Escape" && event.target === search) {
    search.value = "";
    draw();
  } else if (event.key === "Enter" && event.target === search && cards.length > 0) {
    event.preventDefault();
    focus(0);
    const first = rows.find((r) => r.id === cards[0]?.dataset.id);
    if (first && first.code.state === "live") void copy(first);
  } else if (!typing && row && event.key === "Enter") {
    event.preventDefault();
    if (shownCode(row) !== null) void copy(row);
    else if (row.code.state === "on_request") void takeOnRequest(row);
  } else if (!typing && row && (event.key === "e" || event.key === "F2")) {
    event.preventDefault();
    openEdit(row);
  } else if (!typing && row && event.key === "Delete") {
    event.preventDefault();
    confirmDelete(row);
  }
});

let lastActivity = 0;
function activity(): void {
  const now = Date.now();
  if (now - lastActivity < ACTIVITY_EVERY_MS || screens.tokens.hidden) return;
  lastActivity = now;
  void api.noteActivity().catch(() => undefined);
}
for (const kind of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  document.addEventListener(kind, activity, { passive: true });
}

void listen<string>("vault-locked", async (event) => {
  if (screens.tokens.hidden) return;
  pushRequest = null; // closed by the lock, not dismissed: it opens again after the unlock
  for (const dialog of dialogs) dialog.close();
  await showUnlock();
  toast(
    event.payload === "sleep"
      ? "Tessera locked the vault as the computer went to sleep."
      : "Tessera locked the vault after a while without use.",
  );
});

void start().catch((thrown) => toast(asCommandError(thrown).message, "error"));
