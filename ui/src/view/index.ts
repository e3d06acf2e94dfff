// View logic: pure functions from the vault's rows to what the screen shows. No DOM, no IPC, so
// every rule here is unit-tested (view.test.ts); the screens and dialogs only draw what these return.

export * from "../icons";
export * from "./forms";
export * from "./push";
export * from "./rows";
export * from "./search";
export * from "./time";
