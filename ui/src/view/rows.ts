// A token row as the app lists it, and how its title, account and code read on screen.

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
