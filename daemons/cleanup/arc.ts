/**
 * ARC sealing in cleanup (RFC 8617; Postwarden's own, where Postfix sites
 * run OpenARC as a milter): mail from outside that smtpd checked with
 * `arc` in postwarden_authentication_checks gets an ARC set (ARC-Seal,
 * ARC-Message-Signature, ARC-Authentication-Results) as
 * postwarden_arc_seal_domain, so that the hosts it is forwarded to (an
 * alias to another provider, a mailing list) can trust the verdicts made
 * here when SPF or DKIM no longer pass there.
 *
 * The set goes on last, over the message exactly as cleanup writes it
 * (after its edits and DKIM signing), with what smtpd found: the chain's
 * validation (cv=) and its Authentication-Results payload (the late
 * actions' arcSeal, checked in actions.ts). Which mail: smtpd sends the
 * input for clients that are neither SASL-authenticated nor internal
 * (postwarden_dkim_internal_hosts): their mail is DKIM-signed instead.
 * A chain that may not grow (50 sets, or an earlier cv=fail) is left as
 * it is.
 *
 * Fails closed like DKIM signing (dkim.ts): a key that cannot be read or
 * used refuses the message with 451 4.7.0, logged (arcSet throws dkim.ts's
 * DkimSigningError). A chain that is no
 * longer the one smtpd validated (a milter changed the ARC fields) is
 * left unsealed, with a warning.
 *
 * @module
 */
import type { ArcSealInput } from "../../lib/cleanup/client.ts";
import type { Config } from "../../lib/config/mod.ts";
import type { KeyCache } from "./dkim.ts";

/** lib/arc, loaded at the first seal. */
const arc = () => import("../../lib/arc/mod.ts");

const enc = new TextEncoder();

/** The sealing identity of one configuration. */
export interface ArcSealSettings {
  domain: string;
  selector: string;
  /** The key file's absolute path. */
  keyPath: string;
  /** postwarden_authserv_id, for the ARC-Authentication-Results. */
  authservId: string;
}

/** The settings, or null when postwarden_arc_seal_domain is empty (the start checked the rest). */
export function arcSealSettings(cfg: Config): ArcSealSettings | null {
  const domain = cfg.str("postwarden_arc_seal_domain").trim();
  if (domain === "") return null;
  const dir = cfg.str("postwarden_dkim_key_directory").trim().replace(/\/+$/, "");
  const key = cfg.str("postwarden_arc_seal_key").trim();
  return {
    domain,
    selector: cfg.str("postwarden_arc_seal_selector").trim(),
    keyPath: key.startsWith("/") ? key : `${dir}/${key}`,
    authservId: cfg.str("postwarden_authserv_id").trim(),
  };
}

/**
 * The ARC set to put above `content` (the whole message as it will be
 * written): `{ set }`, or `{ skipped }` with the reason when the chain may
 * not grow or no longer is the one smtpd validated (a milter edited the
 * ARC fields). Throws {@link DkimSigningError} when the key cannot be
 * used.
 */
export async function arcSet(
  content: Uint8Array[],
  input: ArcSealInput,
  settings: ArcSealSettings,
  keys: KeyCache,
): Promise<{ set: Uint8Array } | { skipped: string }> {
  const key = await keys.get(settings.keyPath);
  const { ArcSealError, sealMessage } = await arc();
  try {
    const set = await sealMessage(
      content,
      { status: input.cv, instance: input.instance, reason: "", sets: [] },
      input.authResults,
      {
        domain: settings.domain,
        selector: settings.selector,
        key,
        authservId: settings.authservId,
      },
    );
    return set === null
      ? { skipped: "the chain may not grow (50 sets, or a seal says cv=fail)" }
      : { set: enc.encode(set) };
  } catch (e) {
    if (!(e instanceof ArcSealError)) throw e;
    return { skipped: e.message };
  }
}
