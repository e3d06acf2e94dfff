// The desktop app's web page: boots into the right screen (create, unlock, or the token list),
// reports the user's activity (it postpones the auto-lock), and goes back to the lock screen when
// the app locks the vault. State lives in Rust (src-tauri); the screens and dialogs draw it with
// the pure rules of view/ and turn clicks and keys into commands (api.ts).
//
// screens/   setup, unlock, tokens (the list, its tick and the keyboard)
// dialogs/   add, camera, edit, move-qr, delete, enroll, one-swipe, push: each owns its state and timers
// view/, icons.ts   pure and unit-tested; dom.ts   what they all share

import { listen } from "@tauri-apps/api/event";

import * as api from "./api";
import "./dialogs/organisation";
import { forgetShownRequest } from "./dialogs/push";
import { closeDialogs, showing, toast, whenLocked } from "./dom";
import { showSetup } from "./screens/setup";
import { showTokens } from "./screens/tokens";
import { showUnlock, tryUnlock } from "./screens/unlock";
import { asCommandError } from "./view";

/** How often the user's activity is reported (it postpones the auto-lock). */
const ACTIVITY_EVERY_MS = 10_000;

async function start(): Promise<void> {
  const status = await api.vaultStatus();
  if (!status.exists) {
    showSetup();
  } else if (status.unlocked) {
    await showTokens();
  } else {
    await showUnlock(status);
    if (status.slots.includes("os-keystore")) await tryUnlock(null);
  }
}

whenLocked(async () => {
  await showUnlock();
  toast("Tessera locked the vault.");
});

let lastActivity = 0;
function activity(): void {
  const now = Date.now();
  if (now - lastActivity < ACTIVITY_EVERY_MS || !showing("tokens")) return;
  lastActivity = now;
  void api.noteActivity().catch(() => undefined);
}
for (const kind of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  document.addEventListener(kind, activity, { passive: true });
}

void listen<string>("vault-locked", async (event) => {
  if (!showing("tokens")) return;
  forgetShownRequest();
  closeDialogs();
  await showUnlock();
  toast(
    event.payload === "sleep"
      ? "Tessera locked the vault as the computer went to sleep."
      : "Tessera locked the vault after a while without use.",
  );
});

void start().catch((thrown) => toast(asCommandError(thrown).message, "error"));
