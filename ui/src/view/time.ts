// Countdowns and code changes, read from the wall clock so they stay on each step's boundary.

import { type CodeView, type TokenRow } from "./rows";

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

/** Seconds before a One Swipe code expires at which it is replaced (as the CLI does). */
export const ONE_SWIPE_REFRESH_BEFORE_SECS = 5;

/** Milliseconds until a One Swipe code shown with `secondsLeft` to live is replaced (at least 1 s). */
export function oneSwipeRefreshInMs(secondsLeft: number): number {
  return Math.max(1, secondsLeft - ONE_SWIPE_REFRESH_BEFORE_SECS) * 1000;
}
