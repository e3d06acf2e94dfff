// The token list: live codes with their countdowns, search, sort and groups, copying, codes taken
// on request, and the keyboard. The list is the app's answer to `list_tokens`, dated when it was
// asked for, and fetched again when a shown code belongs to a past time step.

import * as api from "../api";
import { openAdd } from "../dialogs/add";
import { confirmDelete } from "../dialogs/delete";
import { openEdit } from "../dialogs/edit";
import { openOneSwipe } from "../dialogs/one-swipe";
import { checkPush } from "../dialogs/push";
import { anyDialogOpen, attempt, element, show, showing, toast, whenShowingOtherThan } from "../dom";
import { avatarColor, initials, issuerIcon, type IssuerIcon } from "../icons";
import {
  formatCode,
  fractionLeft,
  moveSelection,
  msToNextSecond,
  secondsLeft,
  sections,
  stepChanged,
  subtitle,
  title,
  type SortOrder,
  type TokenRow,
} from "../view";
import { showUnlock } from "./unlock";

/** How long a counter-based code taken on request stays on screen. */
const ON_REQUEST_CODE_MS = 30_000;
/** Where sort order is remembered (not a secret). */
const SORT_KEY = "tessera.sort";
/** How long after each whole second the countdowns are redrawn, so the app's clock (read in whole seconds) is surely past it. */
const TICK_MARGIN_MS = 40;

const list = element("token-list");
const search = element<HTMLInputElement>("search");
const sort = element<HTMLSelectElement>("sort");

let rows: TokenRow[] = [];
/** When `rows` were asked for (Unix milliseconds): their codes are of that moment's step or a later one. */
let fetchedAt = Date.now();
let selected = -1;
/** Codes of counter-based tokens taken on request, until they are hidden again. */
const takenCodes = new Map<string, { code: string; until: number }>();

whenShowingOtherThan("tokens", () => {
  rows = [];
  takenCodes.clear();
  list.replaceChildren();
});

/** The listed token `id`, if the list has it. */
export function listedToken(id: string): TokenRow | undefined {
  return rows.find((row) => row.id === id);
}

/** Shows the token list and fetches it. */
export async function showTokens(): Promise<void> {
  show("tokens");
  sort.value = localStorage.getItem(SORT_KEY) ?? "name";
  await refresh();
  search.focus();
  await checkPush();
}

/** Fetches the list again and draws it. */
export async function refresh(): Promise<void> {
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


/** Draws the list as the search and sort ask, keeping the focused card focused. */
export function draw(): void {
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
    if (showing("tokens")) tick();
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
  if (showing("tokens")) void refresh().then(checkPush);
});


/** Locks the vault now and shows the lock screen. */
export async function lockNow(): Promise<void> {
  await api.lock();
  await showUnlock();
}

document.addEventListener("keydown", (event) => {
  if (!showing("tokens") || anyDialogOpen()) return;
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
