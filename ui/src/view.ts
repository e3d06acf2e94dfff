// View logic: pure functions from the vault's rows to what the screen shows. No DOM, no IPC, so
// every rule here is unit-tested (view.test.ts); main.ts only draws what these return.

import {
  si1password,
  siApple,
  siAsana,
  siAtlassian,
  siAutodesk,
  siBackblaze,
  siBattledotnet,
  siBinance,
  siBitbucket,
  siBitwarden,
  siBox,
  siCloudflare,
  siCodeberg,
  siCoinbase,
  siConfluence,
  siDashlane,
  siDigitalocean,
  siDiscord,
  siDocker,
  siDropbox,
  siEbay,
  siEpicgames,
  siEtsy,
  siEvernote,
  siExpressvpn,
  siFacebook,
  siFigma,
  siGandi,
  siGitea,
  siGithub,
  siGitlab,
  siGodaddy,
  siGoogle,
  siHetzner,
  siHubspot,
  siHuggingface,
  siInstagram,
  siIonos,
  siJetbrains,
  siJira,
  siKaggle,
  siKeepassxc,
  siKickstarter,
  siKucoin,
  siLastpass,
  siMailbox,
  siMailchimp,
  siMastodon,
  siMega,
  siMiro,
  siMullvad,
  siNamecheap,
  siNetlify,
  siNextcloud,
  siNordvpn,
  siNotion,
  siNpm,
  siOkta,
  siOvh,
  siPatreon,
  siPaypal,
  siPinterest,
  siPlaystation,
  siPorkbun,
  siProton,
  siProtonmail,
  siProtonvpn,
  siPypi,
  siReddit,
  siRevolut,
  siSentry,
  siShopify,
  siSignal,
  siSnapchat,
  siSpotify,
  siSquarespace,
  siSteam,
  siStripe,
  siSubstack,
  siTailscale,
  siTelegram,
  siTesla,
  siTiktok,
  siTrello,
  siTwitch,
  siUbisoft,
  siVercel,
  siVultr,
  siWhatsapp,
  siWise,
  siWordpress,
  siX,
  siZapier,
  siZoho,
  siZoom,
  type SimpleIcon,
} from "simple-icons";

/** What a row may show of its code (the core's `CodeState`). */
export type CodeView =
  | { state: "live"; code: string; next: string; period: number; seconds_left: number }
  | { state: "on_request" }
  | { state: "pin_required" };

/** A token as `list_tokens` returns it: public details and its code state, never the seed. */
export interface TokenRow {
  id: string;
  issuer: string | null;
  label: string;
  kind: "totp" | "hotp" | "steam";
  algorithm: string;
  digits: number;
  period?: number;
  counter?: number;
  group: string | null;
  icon: string | null;
  created_at: number;
  last_used_at: number | null;
  push?: { server: string; serial: string };
  code: CodeView;
}

/** How the list is ordered within each group. */
export type SortOrder = "name" | "recent" | "added";

/** A group heading and its rows; `group` is null for tokens in no group. */
export interface Section {
  group: string | null;
  rows: TokenRow[];
}

/** `issuer` (or the label when there is no issuer): the row's title. */
export function title(row: Pick<TokenRow, "issuer" | "label">): string {
  return row.issuer ?? row.label;
}

/** The line under the title: the account, unless the title already is it. */
export function subtitle(row: Pick<TokenRow, "issuer" | "label">): string {
  return row.issuer === null ? "" : row.label;
}

/** A code split for reading aloud: 6 → "123 456", 8 → "1234 5678", 7 → "123 4567"; Steam's 5 as is. */
export function formatCode(code: string): string {
  if (code.length < 6) return code;
  const half = Math.floor(code.length / 2);
  return `${code.slice(0, half)} ${code.slice(half)}`;
}

/** True when every word of the query appears in the issuer, account or group (any case). */
export function matches(row: TokenRow, query: string): boolean {
  const haystack = [row.issuer ?? "", row.label, row.group ?? ""].join(" ").toLocaleLowerCase();
  return query
    .toLocaleLowerCase()
    .split(/\s+/)
    .filter((word) => word.length > 0)
    .every((word) => haystack.includes(word));
}

const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

function byName(a: TokenRow, b: TokenRow): number {
  return collator.compare(title(a), title(b)) || collator.compare(a.label, b.label);
}

/** The rows in `order`: by name, most recently used first (never-used last, by name), or newest first. */
export function sortRows(rows: readonly TokenRow[], order: SortOrder): TokenRow[] {
  const sorted = [...rows];
  switch (order) {
    case "name":
      return sorted.sort(byName);
    case "recent":
      return sorted.sort((a, b) => (b.last_used_at ?? -1) - (a.last_used_at ?? -1) || byName(a, b));
    case "added":
      return sorted.sort((a, b) => b.created_at - a.created_at || byName(a, b));
  }
}

/**
 * What the list shows: the rows matching `query`, in `order`, in sections by group: tokens in no
 * group first, then groups by name. Empty sections are left out.
 */
export function sections(rows: readonly TokenRow[], query: string, order: SortOrder): Section[] {
  const groups = new Map<string | null, TokenRow[]>();
  for (const row of sortRows(rows.filter((r) => matches(r, query)), order)) {
    const list = groups.get(row.group) ?? [];
    list.push(row);
    groups.set(row.group, list);
  }
  const names = [...groups.keys()].filter((g): g is string => g !== null).sort(collator.compare);
  const ordered: (string | null)[] = groups.has(null) ? [null, ...names] : names;
  return ordered.map((group) => ({ group, rows: groups.get(group) ?? [] }));
}

/**
 * Milliseconds of the current time step left at `nowMs` (Unix milliseconds). The step is read from
 * the wall clock, as the code itself is, so the countdown and the change of code stay on the
 * step's boundary whatever the fetch's latency, a late timer or a change of the system clock.
 */
function msLeft(period: number, nowMs: number): number {
  const periodMs = period * 1000;
  return periodMs - (nowMs % periodMs);
}

/** The time step a live code of `period` seconds belongs to at `nowMs`. */
export function stepAt(period: number, nowMs: number): number {
  return Math.floor(nowMs / (period * 1000));
}

/** Seconds a live code has left at `nowMs` (0 for codes that are not live). */
export function secondsLeft(code: CodeView, nowMs: number): number {
  if (code.state !== "live") return 0;
  return Math.ceil(msLeft(code.period, nowMs) / 1000);
}

/** The fraction of the period left, for the countdown ring (1 = just started, 0 = expired). */
export function fractionLeft(code: CodeView, nowMs: number): number {
  if (code.state !== "live") return 0;
  return msLeft(code.period, nowMs) / (code.period * 1000);
}

/** Milliseconds from `nowMs` to the next whole second, where countdowns change (and codes, on a step's boundary). */
export function msToNextSecond(nowMs: number): number {
  return msLeft(1, nowMs);
}

/** True when a code in `rows`, fetched at `fetchedMs`, belongs to another step at `nowMs`: the list is stale. */
export function stepChanged(rows: readonly TokenRow[], fetchedMs: number, nowMs: number): boolean {
  return rows.some((r) => r.code.state === "live" && stepAt(r.code.period, fetchedMs) !== stepAt(r.code.period, nowMs));
}

/** Up to two letters for the avatar: "GitHub" → "G", "Acme Corp" → "AC". */
export function initials(name: string): string {
  const words = name.split(/[\s._@:-]+/).filter((w) => w.length > 0);
  const letters = words.slice(0, 2).map((w) => [...w][0] ?? "");
  return letters.join("").toLocaleUpperCase() || "?";
}

/**
 * Icons of well-known issuers, from Simple Icons (its data is CC0; the brands are their owners'
 * trademarks, shown only to tell the user which account a code is for). Bundled, because the
 * URI's `image` is never fetched: that would tell a third party which accounts the user has.
 */
const ISSUER_ICONS: readonly SimpleIcon[] = [
  si1password, siApple, siAsana, siAtlassian, siAutodesk, siBackblaze, siBattledotnet, siBinance,
  siBitbucket, siBitwarden, siBox, siCloudflare, siCodeberg, siCoinbase, siConfluence, siDashlane,
  siDigitalocean, siDiscord, siDocker, siDropbox, siEbay, siEpicgames, siEtsy, siEvernote,
  siExpressvpn, siFacebook, siFigma, siGandi, siGitea, siGithub, siGitlab, siGodaddy, siGoogle,
  siHetzner, siHubspot, siHuggingface, siInstagram, siIonos, siJetbrains, siJira, siKaggle,
  siKeepassxc, siKickstarter, siKucoin, siLastpass, siMailbox, siMailchimp, siMastodon, siMega,
  siMiro, siMullvad, siNamecheap, siNetlify, siNextcloud, siNordvpn, siNotion, siNpm, siOkta,
  siOvh, siPatreon, siPaypal, siPinterest, siPlaystation, siPorkbun, siProton, siProtonmail,
  siProtonvpn, siPypi, siReddit, siRevolut, siSentry, siShopify, siSignal, siSnapchat, siSpotify,
  siSquarespace, siSteam, siStripe, siSubstack, siTailscale, siTelegram, siTesla, siTiktok,
  siTrello, siTwitch, siUbisoft, siVercel, siVultr, siWhatsapp, siWise, siWordpress, siX, siZapier,
  siZoho, siZoom,
];

/**
 * Brand colours of well-known issuers that Simple Icons has no icon for (their owners asked it
 * to remove them): their avatars keep the initials on the brand's colour.
 */
const BRAND_COLORS: Record<string, string> = {
  amazon: "#ff9900",
  aws: "#ff9900",
  microsoft: "#00a4ef",
  slack: "#4a154b",
  tessera: "#2db49a",
};

/** An issuer's icon: an SVG path on a 24×24 box, drawn in `glyph` on `color`. */
export interface IssuerIcon {
  title: string;
  path: string;
  color: string;
  glyph: string;
}

/** The name's words as matched against brands: lower case, letters and digits only. */
function brandWords(name: string): string[] {
  return name
    .toLocaleLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
}

/**
 * Whether a name with `words` names brand `brand`: its words written together are the brand, or
 * start with it ("Google Workspace", "github.com") when the brand's name is long enough not to be
 * a chance prefix, or its first word is the brand ("AWS root", but not "Xerox" for X).
 */
function names(words: readonly string[], brand: string): boolean {
  const key = words.join("");
  return key === brand || words[0] === brand || (brand.length >= 5 && key.startsWith(brand));
}

/** The icon of issuer `name` when it is a known brand (the longest brand name that matches). */
export function issuerIcon(name: string): IssuerIcon | undefined {
  const words = brandWords(name);
  const found = ISSUER_ICONS.filter((icon) => names(words, icon.slug)).sort(
    (a, b) => b.slug.length - a.slug.length,
  )[0];
  if (!found) return undefined;
  const color = `#${found.hex.toLowerCase()}`;
  return { title: found.title, path: found.path, color, glyph: readableOn(color) };
}

/** White or near-black, whichever reads better on `hex` (WCAG relative luminance). */
export function readableOn(hex: string): string {
  const channel = (offset: number) => {
    const value = Number.parseInt(hex.slice(offset, offset + 2), 16) / 255;
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return luminance > 0.4 ? "#1f2328" : "#ffffff";
}

/**
 * The avatar colour: the issuer's brand colour when known (its icon's, or the list above), else
 * a stable hue from the name.
 */
export function avatarColor(name: string): string {
  const icon = issuerIcon(name);
  if (icon) return icon.color;
  const words = brandWords(name);
  const known = Object.entries(BRAND_COLORS).find(([brand]) => names(words, brand));
  if (known) return known[1];
  let hash = 0;
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return `hsl(${hash % 360} 55% 45%)`;
}

/** A command's failure (`{kind, message}` from the app, or anything else thrown). */
export interface CommandError {
  kind: string;
  message: string;
}

/** The failure as a `CommandError`. */
export function asCommandError(error: unknown): CommandError {
  if (typeof error === "object" && error !== null && "kind" in error && "message" in error) {
    return { kind: String(error.kind), message: String(error.message) };
  }
  return { kind: "internal", message: error instanceof Error ? error.message : String(error) };
}

/** The shortest passphrase the vault accepts (the core's `MIN_PASSPHRASE_CHARS`). */
export const MIN_PASSPHRASE_CHARS = 8;

/** What is wrong with the create-vault form, or null when it can be submitted. */
export function createFormProblem(useKeystore: boolean, passphrase: string, confirm: string): string | null {
  if (!useKeystore && passphrase.length === 0) {
    return "Choose a passphrase, or let the system key store unlock the vault.";
  }
  if (passphrase.length > 0 && [...passphrase].length < MIN_PASSPHRASE_CHARS) {
    return `The passphrase must be at least ${MIN_PASSPHRASE_CHARS} characters long.`;
  }
  if (passphrase !== confirm) return "The two passphrases differ.";
  return null;
}

/** The index selected after moving `delta` rows from `current` in a list of `count` (clamped). */
export function moveSelection(current: number, delta: number, count: number): number {
  if (count === 0) return -1;
  if (current < 0) return delta > 0 ? 0 : count - 1;
  return Math.min(count - 1, Math.max(0, current + delta));
}

/** Seconds before a One Swipe code expires at which it is replaced (as the CLI does). */
export const ONE_SWIPE_REFRESH_BEFORE_SECS = 5;

/** Milliseconds until a One Swipe code shown with `secondsLeft` to live is replaced (at least 1 s). */
export function oneSwipeRefreshInMs(secondsLeft: number): number {
  return Math.max(1, secondsLeft - ONE_SWIPE_REFRESH_BEFORE_SECS) * 1000;
}

/** A login request waiting for an answer, as `push_status` and the `push-request` event give it. */
export interface PushRequest {
  transaction_id: string;
  token_id: string;
  username: string;
  service: string;
  client_ip: string | null;
  user_agent: string | null;
  created_at: number;
  expires_at: number;
  seconds_left: number;
  number_matching: "pick" | "type" | "off";
  number_choices: number[];
}

/** The request to show: the oldest one with time left, or null. */
export function nextRequest(requests: readonly PushRequest[]): PushRequest | null {
  const live = requests.filter((r) => r.seconds_left > 0);
  live.sort((a, b) => a.created_at - b.created_at);
  return live[0] ?? null;
}

/** The approval dialog's headline. */
export function requestHeadline(request: PushRequest): string {
  return `${request.username} is logging in to ${request.service}`;
}

/** The details under the headline, as label and value, for what the server saw. */
export function requestContext(request: PushRequest, timeZone?: string): [string, string][] {
  const started = new Date(request.created_at * 1000).toLocaleTimeString("en-GB", { timeZone });
  const context: [string, string][] = [];
  if (request.client_ip) context.push(["From", request.client_ip]);
  if (request.user_agent) context.push(["Browser", request.user_agent]);
  context.push(["Started", started]);
  return context;
}

/** What the login screen asks of the user, for the dialog's instruction line. */
export function numberPrompt(request: PushRequest): string {
  switch (request.number_matching) {
    case "pick":
      return "Choose the number the login screen shows.";
    case "type":
      return "Type the number the login screen shows.";
    case "off":
      return "Approve only if you are logging in right now.";
  }
}

/** A number typed into the approval dialog, or null when it is not one (0–99, digits only). */
export function typedNumber(text: string): number | null {
  const trimmed = text.trim();
  return /^\d{1,2}$/.test(trimmed) ? Number(trimmed) : null;
}
