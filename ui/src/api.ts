// The app's commands, typed. Each is one `invoke` of a command in src-tauri/src/commands.rs; the
// argument names are the Rust parameters' in camelCase (Tauri's convention).

import { type Channel, invoke } from "@tauri-apps/api/core";

import type { PushRequest, TokenRow } from "./view";

/** What the first screen needs to know. */
export interface VaultStatus {
  exists: boolean;
  unlocked: boolean;
  path: string;
  slots: string[];
  auto_lock_secs: number;
}

/** A token's public details, as an add or an edit returns them. */
export type TokenInfo = Omit<TokenRow, "code">;

/** Where an enrollment link leads, shown before anything is sent. */
export interface EnrollmentPreview {
  server: string;
  host: string;
  issuer: string | null;
  account: string | null;
  /** Plain HTTP to another computer: a second, red confirmation is needed. */
  cleartext: boolean;
}

/** What an add did; for an enrollment link, nothing yet: `enrollment` waits for confirmation. */
export interface Added {
  tokens: TokenInfo[];
  warnings: string[];
  enrollment: EnrollmentPreview | null;
}

/** What signing in to an organisation asks next, or that this app is enrolled. */
export type OrganisationStep =
  | { step: "enrolled"; added: Added }
  | { step: "approve"; message: string; number: number | null; transaction_id: string }
  | { step: "enter_sent_code"; message: string; transaction_id: string }
  | { step: "enter_passcode"; message: string };

/** A token typed in by hand. */
export interface ManualForm {
  issuer: string | null;
  label: string;
  secret: string;
  kind: "totp" | "hotp" | "steam";
  algorithm: "SHA1" | "SHA256" | "SHA512";
  digits: number;
  period: number;
  counter: number;
  group: string | null;
}

/** A One Swipe code on screen. */
export interface OneSwipeView {
  name: string;
  image: string;
  seconds_left: number;
  lifetime_secs: number;
}

/** Push devices, whether their channels are open, and the login requests waiting. */
export interface PushStatus {
  devices: number;
  connected: boolean;
  requests: PushRequest[];
}

/** How the user answers a login request. */
export type Reply = "approve" | "deny" | "not_me";

export const vaultStatus = () => invoke<VaultStatus>("vault_status");
export const createVault = (useKeystore: boolean, passphrase: string | null) =>
  invoke<void>("create_vault", { useKeystore, passphrase });
export const unlock = (passphrase: string | null) => invoke<void>("unlock", { passphrase });
export const lock = () => invoke<void>("lock");
export const noteActivity = () => invoke<void>("note_activity");
export const listTokens = () => invoke<TokenRow[]>("list_tokens");
export const takeCode = (id: string) => invoke<string>("take_code", { id });
export const copyCode = (id: string) => invoke<{ clears_in_secs: number }>("copy_code", { id });
export const addUri = (uri: string, group: string | null) => invoke<Added>("add_uri", { uri, group });
export const addImage = (bytes: Uint8Array) => invoke<Added>("add_image", bytes);
export const addManual = (form: ManualForm) => invoke<Added>("add_manual", { form });
/** Enrolls from the link the user confirmed (with `acceptCleartext` after the second warning). */
export const confirmEnrollment = (acceptCleartext: boolean) =>
  invoke<Added>("confirm_enrollment", { acceptCleartext });
/** Forgets the link waiting for confirmation. */
export const cancelEnrollment = () => invoke<void>("cancel_enrollment");
/** Signs in to an organisation's server: this app becomes the user's push device once accepted. */
export const signInToOrganisation = (server: string, username: string, password: string | null, factor: string | null) =>
  invoke<OrganisationStep>("sign_in_to_organisation", { server, username, password, factor });
/** Waits for the approval on the user's other device (no `code`), or sends the code sent to them. */
export const continueOrganisationSignIn = (server: string, username: string, transactionId: string, code: string | null) =>
  invoke<OrganisationStep>("continue_organisation_sign_in", { server, username, transactionId, code });
export const editToken = (id: string, issuer: string, label: string, group: string) =>
  invoke<TokenInfo>("edit_token", { id, issuer, label, group });
export const removeToken = (id: string) => invoke<void>("remove_token", { id });
export const oneSwipe = (id: string, pin: string | null) => invoke<OneSwipeView>("one_swipe", { id, pin });
/** Push devices, channel state and waiting login requests (works while locked). */
export const pushStatus = () => invoke<PushStatus>("push_status");
/** Approves (with the login screen's number), denies, or reports a login request. */
export const answerPush = (transactionId: string, reply: Reply, number: number | null, pin: string | null) =>
  invoke<{ status: string }>("answer_push", { transactionId, reply, number, pin });
/** The cameras to scan with. */
export const listCameras = () => invoke<{ index: number; name: string }[]>("list_cameras");
/** Scans until a token's QR code is seen and adds it (null when stopped); frames go to `preview`. */
export const scanCamera = (camera: number, group: string | null, preview: Channel<string>) =>
  invoke<Added | null>("scan_camera", { camera, group, preview });
/** Stops a camera scan. */
export const stopCamera = () => invoke<void>("stop_camera");
/** A token's QR code for moving it, behind the passphrase (and the PIN for push tokens). */
export const tokenQr = (id: string, passphrase: string | null, pin: string | null) =>
  invoke<{ name: string; image: string }>("token_qr", { id, passphrase, pin });
