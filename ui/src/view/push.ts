// Login requests: which one to show, and what the approval dialog says about it.

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
