// The avatar of a token: a well-known issuer's icon (Simple Icons, bundled: never fetched) on its
// brand colour, or initials on a colour of the name. Pure, like view/, and tested with it.

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
