import { describe, expect, it } from "vitest";

import {
  asCommandError,
  avatarColor,
  issuerIcon,
  readableOn,
  createFormProblem,
  formatCode,
  fractionLeft,
  initials,
  matches,
  moveSelection,
  msToNextSecond,
  nextRequest,
  numberPrompt,
  oneSwipeRefreshInMs,
  requestContext,
  requestHeadline,
  secondsLeft,
  sections,
  stepAt,
  stepChanged,
  sortRows,
  subtitle,
  title,
  typedNumber,
  type PushRequest,
  type TokenRow,
} from "./view";

/** Unix milliseconds at which a 30 s and a 60 s time step begin. */
const STEP_START = 1_700_000_040_000;

function row(overrides: Partial<TokenRow>): TokenRow {
  return {
    id: "0000000000000000",
    issuer: "GitHub",
    label: "octocat",
    kind: "totp",
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    group: null,
    icon: null,
    created_at: 100,
    last_used_at: null,
    code: { state: "live", code: "123456", next: "654321", period: 30, seconds_left: 12 },
    ...overrides,
  };
}

describe("names", () => {
  it("titles a row by issuer, or by account when there is none", () => {
    expect(title(row({}))).toBe("GitHub");
    expect(subtitle(row({}))).toBe("octocat");
    expect(title(row({ issuer: null, label: "me@example.com" }))).toBe("me@example.com");
    expect(subtitle(row({ issuer: null }))).toBe("");
  });

  it("makes initials from up to two words", () => {
    expect(initials("GitHub")).toBe("G");
    expect(initials("Acme corp")).toBe("AC");
    expect(initials("me@example.com")).toBe("ME");
    expect(initials("")).toBe("?");
  });

  it("gives known issuers their brand colour and others a stable hue", () => {
    expect(avatarColor("GitHub")).toBe("#181717");
    expect(avatarColor("Google Workspace")).toBe("#4285f4");
    expect(avatarColor("Microsoft"), "a brand without an icon").toBe("#00a4ef");
    expect(avatarColor("AWS root")).toBe("#ff9900");
    expect(avatarColor("Acme")).toMatch(/^hsl\(\d+ 55% 45%\)$/);
    expect(avatarColor("Acme")).toBe(avatarColor("Acme"));
    expect(avatarColor("Acme")).not.toBe(avatarColor("Emca"));
  });
});

describe("issuer icons", () => {
  it("finds well-known issuers by name, written as services write it", () => {
    expect(issuerIcon("GitHub")?.title).toBe("GitHub");
    expect(issuerIcon("github.com")?.title).toBe("GitHub");
    expect(issuerIcon("Google Workspace")?.title).toBe("Google");
    expect(issuerIcon("Proton Mail")?.title, "the longest brand that matches").toBe("Proton Mail");
    expect(issuerIcon("X")?.title).toBe("X");
    expect(issuerIcon("GitHub")?.path).toMatch(/^M/);
  });

  it("leaves unknown issuers and chance prefixes without an icon", () => {
    expect(issuerIcon("Acme")).toBeUndefined();
    expect(issuerIcon("Microsoft"), "removed from Simple Icons at its owner's request").toBeUndefined();
    expect(issuerIcon("Xerox"), "X is matched only as itself").toBeUndefined();
    expect(issuerIcon("Boxcryptor")).toBeUndefined();
    expect(issuerIcon("")).toBeUndefined();
  });

  it("draws each glyph in the colour that reads on its brand colour", () => {
    expect(readableOn("#181717")).toBe("#ffffff");
    expect(readableOn("#fffc00")).toBe("#1f2328");
    expect(issuerIcon("Snapchat")?.glyph).toBe("#1f2328");
    expect(issuerIcon("GitHub")?.glyph).toBe("#ffffff");
  });
});

describe("codes", () => {
  it("splits codes in two for reading", () => {
    expect(formatCode("123456")).toBe("123 456");
    expect(formatCode("12345678")).toBe("1234 5678");
    expect(formatCode("1234567")).toBe("123 4567");
    expect(formatCode("2BC9F")).toBe("2BC9F");
  });

  it("counts down on the wall clock, to the step's boundary", () => {
    const code = row({}).code;
    expect(secondsLeft(code, STEP_START)).toBe(30);
    expect(secondsLeft(code, STEP_START + 17_500)).toBe(13);
    expect(secondsLeft(code, STEP_START + 29_999)).toBe(1);
    expect(fractionLeft(code, STEP_START)).toBe(1);
    expect(fractionLeft(code, STEP_START + 18_000)).toBeCloseTo(0.4);
    expect(secondsLeft({ state: "on_request" }, STEP_START)).toBe(0);
    expect(fractionLeft({ state: "on_request" }, STEP_START)).toBe(0);
  });

  it("replaces a One Swipe code 5 s before it expires, and never sooner than in 1 s", () => {
    expect(oneSwipeRefreshInMs(30)).toBe(25_000);
    expect(oneSwipeRefreshInMs(6)).toBe(1000);
    expect(oneSwipeRefreshInMs(2)).toBe(1000);
  });

  it("ticks on the wall clock's whole seconds, where steps begin", () => {
    expect(msToNextSecond(STEP_START + 27_250)).toBe(750);
    expect(msToNextSecond(STEP_START + 29_999)).toBe(1);
    expect(msToNextSecond(STEP_START + 30_000)).toBe(1000);
  });

  it("calls a list stale once the wall clock leaves the step its codes were made in", () => {
    const rows = [row({})];
    expect(stepChanged(rows, STEP_START + 100, STEP_START + 29_900)).toBe(false);
    expect(stepChanged(rows, STEP_START + 29_900, STEP_START + 30_050)).toBe(true);
    expect(stepChanged(rows, STEP_START + 100, STEP_START - 600_000)).toBe(true);
    expect(stepChanged([row({ code: { state: "on_request" } })], 0, STEP_START)).toBe(false);
    expect(stepAt(30, STEP_START)).toBe(STEP_START / 30_000);
  });
});

describe("search, sort and groups", () => {
  const rows = [
    row({ id: "a", issuer: "GitLab", label: "work", group: "Work", created_at: 3, last_used_at: 50 }),
    row({ id: "b", issuer: "github", label: "octocat", created_at: 1, last_used_at: 90 }),
    row({ id: "c", issuer: "AWS", label: "root", group: "Work", created_at: 2 }),
    row({ id: "d", issuer: null, label: "bank", group: "Home", created_at: 4 }),
  ];
  const ids = (list: TokenRow[]) => list.map((r) => r.id);

  it("matches every word of the query in issuer, account or group, in any case", () => {
    expect(matches(rows[0]!, "git work")).toBe(true);
    expect(matches(rows[0]!, "git home")).toBe(false);
    expect(matches(rows[3]!, "HOME")).toBe(true);
    expect(matches(rows[1]!, "  ")).toBe(true);
  });

  it("sorts by name, by last use, or newest first", () => {
    expect(ids(sortRows(rows, "name"))).toEqual(["c", "d", "b", "a"]);
    expect(ids(sortRows(rows, "recent"))).toEqual(["b", "a", "c", "d"]);
    expect(ids(sortRows(rows, "added"))).toEqual(["d", "a", "c", "b"]);
  });

  it("puts ungrouped tokens first, then groups by name, leaving out empty ones", () => {
    const shown = sections(rows, "", "name");
    expect(shown.map((s) => s.group)).toEqual([null, "Home", "Work"]);
    expect(shown.map((s) => ids(s.rows))).toEqual([["b"], ["d"], ["c", "a"]]);
    expect(sections(rows, "aws", "name")).toEqual([{ group: "Work", rows: [rows[2]] }]);
    expect(sections(rows, "nothing", "name")).toEqual([]);
  });
});

describe("forms and errors", () => {
  it("checks the create-vault form as the core would", () => {
    expect(createFormProblem(true, "", "")).toBeNull();
    expect(createFormProblem(false, "", "")).toMatch(/Choose a passphrase/);
    expect(createFormProblem(true, "short", "short")).toMatch(/at least 8/);
    expect(createFormProblem(false, "long enough", "long enougH")).toMatch(/differ/);
    expect(createFormProblem(false, "long enough", "long enough")).toBeNull();
  });

  it("reads the app's {kind, message} errors and anything else thrown", () => {
    expect(asCommandError({ kind: "locked", message: "the vault is locked" })).toEqual({
      kind: "locked",
      message: "the vault is locked",
    });
    expect(asCommandError(new Error("boom"))).toEqual({ kind: "internal", message: "boom" });
    expect(asCommandError("text")).toEqual({ kind: "internal", message: "text" });
  });

  it("moves the keyboard selection within the list", () => {
    expect(moveSelection(-1, 1, 3)).toBe(0);
    expect(moveSelection(-1, -1, 3)).toBe(2);
    expect(moveSelection(2, 1, 3)).toBe(2);
    expect(moveSelection(0, -1, 3)).toBe(0);
    expect(moveSelection(0, 1, 0)).toBe(-1);
  });
});

function request(overrides: Partial<PushRequest>): PushRequest {
  return {
    transaction_id: "TX-1",
    token_id: "0000000000000000",
    username: "alice",
    service: "ACME VPN",
    client_ip: "203.0.113.9",
    user_agent: "Firefox/140",
    created_at: 1_700_000_000,
    expires_at: 1_700_000_060,
    seconds_left: 42,
    number_matching: "pick",
    number_choices: [12, 47, 83],
    ...overrides,
  };
}

describe("login requests", () => {
  it("shows the oldest request that has time left", () => {
    const old = request({ transaction_id: "old", created_at: 10, seconds_left: 0 });
    const first = request({ transaction_id: "first", created_at: 20 });
    const second = request({ transaction_id: "second", created_at: 30 });
    expect(nextRequest([second, old, first])?.transaction_id).toBe("first");
    expect(nextRequest([old])).toBeNull();
    expect(nextRequest([])).toBeNull();
  });

  it("says who logs in where, and what the server saw", () => {
    expect(requestHeadline(request({}))).toBe("alice is logging in to ACME VPN");
    expect(requestContext(request({}), "UTC")).toEqual([
      ["From", "203.0.113.9"],
      ["Browser", "Firefox/140"],
      ["Started", "22:13:20"],
    ]);
    expect(requestContext(request({ client_ip: null, user_agent: null }), "UTC")).toEqual([["Started", "22:13:20"]]);
  });

  it("asks for the number the way the request says", () => {
    expect(numberPrompt(request({}))).toMatch(/Choose/);
    expect(numberPrompt(request({ number_matching: "type" }))).toMatch(/Type/);
    expect(numberPrompt(request({ number_matching: "off", number_choices: [] }))).toMatch(/right now/);
  });

  it("takes only one or two typed digits as a number", () => {
    expect(typedNumber(" 47 ")).toBe(47);
    expect(typedNumber("7")).toBe(7);
    for (const bad of ["", "4 7", "100", "-1", "4e1", "0x2f", "47a"]) expect(typedNumber(bad)).toBeNull();
  });
});
