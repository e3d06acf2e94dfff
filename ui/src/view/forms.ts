// Forms and failures: what a command's error says, and what is wrong with a form before it is sent.

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
