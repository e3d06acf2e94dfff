// Which rows the list shows, in which order and under which headings, and how the keyboard
// moves through them.

import { type Section, type SortOrder, type TokenRow, title } from "./rows";

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

/** The index selected after moving `delta` rows from `current` in a list of `count` (clamped). */
export function moveSelection(current: number, delta: number, count: number): number {
  if (count === 0) return -1;
  if (current < 0) return delta > 0 ? 0 : count - 1;
  return Math.min(count - 1, Math.max(0, current + delta));
}
