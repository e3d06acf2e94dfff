// What every screen and dialog shares: element lookup, which screen shows, the toast, the dialogs
// (the keyboard pauses while one is open, and locking closes them all), and running a command so
// that its failure is shown and a lock goes back to the unlock screen.

import * as api from "./api";
import { asCommandError } from "./view";

/** The element with `id`; a missing one is a bug in index.html, reported at once. */
export function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

/** The three screens; one shows at a time. */
export const screens = {
  setup: element("setup-screen"),
  unlock: element("unlock-screen"),
  tokens: element("tokens-screen"),
};

/** A screen's name. */
export type Screen = keyof typeof screens;

const leaving: [Screen, () => void][] = [];

/** Runs `action` whenever another screen than `screen` is shown (to forget what `screen` showed). */
export function whenShowingOtherThan(screen: Screen, action: () => void): void {
  leaving.push([screen, action]);
}

/** Shows `screen` and hides the others. */
export function show(screen: Screen): void {
  for (const [name, section] of Object.entries(screens)) section.hidden = name !== screen;
  for (const [name, action] of leaving) if (name !== screen) action();
}

/** Whether `screen` is the one showing. */
export function showing(screen: Screen): boolean {
  return !screens[screen].hidden;
}

const toastBox = element("toast");
let toastTimer: number | undefined;

/** A short message at the bottom of the window; errors stay longer. */
export function toast(message: string, kind: "info" | "error" = "info"): void {
  toastBox.textContent = message;
  toastBox.className = kind;
  toastBox.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (toastBox.hidden = true), kind === "error" ? 6000 : 3500);
}

const dialogs: HTMLDialogElement[] = [];

/** The dialog with `id`, registered so the keyboard shortcuts pause while it is open and locking closes it. */
export function dialog(id: string): HTMLDialogElement {
  const found = element<HTMLDialogElement>(id);
  dialogs.push(found);
  found.querySelector("button.cancel[type=button]")?.addEventListener("click", () => found.close());
  return found;
}

/** Whether any dialog is open. */
export function anyDialogOpen(): boolean {
  return dialogs.some((open) => open.open);
}

/** Closes every dialog but `except`. */
export function closeDialogs(except?: HTMLDialogElement): void {
  for (const open of dialogs) if (open !== except) open.close();
}

let onLocked: () => Promise<void> = async () => undefined;

/** What to do when a command finds the vault locked while the token list shows (the app goes back to the unlock screen). */
export function whenLocked(action: () => Promise<void>): void {
  onLocked = action;
}

/** Runs a command; a `locked` failure goes back to the unlock screen, others are shown in `errorBox` or a toast. */
export async function attempt<T>(action: () => Promise<T>, errorBox?: HTMLElement): Promise<T | undefined> {
  try {
    if (errorBox) errorBox.textContent = "";
    return await action();
  } catch (thrown) {
    const error = asCommandError(thrown);
    if (error.kind === "locked" && showing("tokens") && !(await api.vaultStatus()).unlocked) {
      await onLocked();
    } else if (errorBox) {
      errorBox.textContent = error.message;
    } else {
      toast(error.message, "error");
    }
    return undefined;
  }
}
