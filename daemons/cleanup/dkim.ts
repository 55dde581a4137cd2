/**
 * DKIM signing in cleanup (Postwarden's own; Postfix sites run OpenDKIM as
 * a milter for it): mail that may be signed gets one DKIM-Signature
 * header per key that postwarden_dkim_signing_table gives for the domain
 * of its From: header, over the message exactly as cleanup writes it
 * (after header_checks, address rewriting and milter edits), with
 * relaxed/relaxed canonicalization and the key's algorithm (rsa-sha256 or
 * ed25519-sha256). lib/dkim does the signing.
 *
 * Which mail may be signed is decided before cleanup: local submissions
 * (sendmail, pickup) and cleanup's own bounces always, SMTP mail when
 * smtpd says its client is SASL-authenticated or listed in
 * postwarden_dkim_internal_hosts (CleanupEnvelope.dkimSign).
 *
 * Table values: `selector:keyfile`, several separated by commas or
 * spaces (one signature each, e.g. an RSA and an Ed25519 key). A keyfile
 * is a PEM file named relative to postwarden_dkim_key_directory (or an
 * absolute path inside it): cleanup's sandbox may read that directory and
 * nothing else may (lib/permissions), so a table entry cannot make
 * cleanup read another file. Keys are read once and kept for a minute.
 *
 * Fails closed: a key that cannot be read or used, or a malformed table
 * value, refuses the message with a 4XX (logged with the reason), so
 * mail that should be signed never leaves unsigned; the table's own
 * failures are cleanup's usual 451.
 *
 * Not done: signing for a parent domain's entry (the lookup key is the
 * From: domain exactly), a d= other than that domain, l= and z=.
 *
 * @module
 */
import { parseHeaderAddresses, splitAddress } from "../../lib/address/mod.ts";
import type { DkimSigningKey } from "../../lib/dkim/mod.ts";
import type { Maps } from "../../lib/maps/mod.ts";
import { findHeader, type HeaderField } from "../../lib/mime/mod.ts";

/** lib/dkim, loaded at the first signature: node:crypto costs a cleanup that never signs ~6 MB. */
const dkim = () => import("../../lib/dkim/mod.ts");

/** How long a key read from disk is used before it is read again. */
const KEY_TTL_MS = 60_000;

const enc = new TextEncoder();

/** A signing key that could not be used, or a table value that names none. */
export class DkimSigningError extends Error {
  override readonly name = "DkimSigningError";
}

/** One key of a signing table value. */
export interface SigningEntry {
  selector: string;
  /** The key file's absolute path (inside the key directory). */
  path: string;
}

/**
 * A signing table value: `selector:keyfile` items; throws
 * {@link DkimSigningError} for a malformed item or a keyfile outside
 * `keyDir`.
 */
export function parseSigningValue(value: string, keyDir: string): SigningEntry[] {
  const dir = keyDir.replace(/\/+$/, "");
  const out: SigningEntry[] = [];
  for (const item of value.split(/[\s,]+/).filter(Boolean)) {
    const colon = item.indexOf(":");
    const selector = item.slice(0, colon);
    const file = item.slice(colon + 1);
    if (colon <= 0 || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(selector) || file === "") {
      throw new DkimSigningError(`bad signing table value "${item}": need selector:keyfile`);
    }
    const path = file.startsWith("/") ? file : `${dir}/${file}`;
    const inside = path.startsWith(`${dir}/`) && !path.split("/").some((p) => p === "..");
    if (!inside) {
      throw new DkimSigningError(`key file ${file} is not inside ${dir}`);
    }
    out.push({ selector, path });
  }
  if (out.length === 0) throw new DkimSigningError("empty signing table value");
  return out;
}

/** Keys read from the key directory, each kept for {@link KEY_TTL_MS}; failures are not kept. */
export class KeyCache {
  readonly #keys = new Map<string, { key: Promise<DkimSigningKey>; at: number }>();

  constructor(readonly now: () => number = Date.now) {}

  /** The key in `path`; throws {@link DkimSigningError} when it cannot be read or used. */
  get(path: string): Promise<DkimSigningKey> {
    const now = this.now();
    const cached = this.#keys.get(path);
    if (cached && now - cached.at < KEY_TTL_MS) return cached.key;
    const key = (async () => {
      let pem: string;
      try {
        pem = await Deno.readTextFile(path);
      } catch (e) {
        throw new DkimSigningError(`cannot read key ${path}: ${(e as Error).message}`);
      }
      try {
        return await (await dkim()).loadSigningKey(pem);
      } catch (e) {
        throw new DkimSigningError(`key ${path}: ${(e as Error).message}`);
      }
    })();
    // A failure is not kept: the next message tries again.
    key.catch(() => this.#keys.delete(path));
    this.#keys.set(path, { key, at: now });
    return key;
  }
}

/** The signer of one cleanup process: its table, key directory and key cache. */
export class DkimSigner {
  constructor(
    readonly table: Maps,
    readonly keyDir: string,
    readonly keys: KeyCache = new KeyCache(),
  ) {}

  /** True when no signing table is set: nothing is ever signed. */
  get off(): boolean {
    return this.table.empty;
  }

  /**
   * The DKIM-Signature header fields for `content` (the whole message as
   * it will be written: header section, empty line, body, CRLF lines),
   * whose header fields are `headers`; none when the From: domain has no
   * table entry. Throws DictError when the table fails, and
   * {@link DkimSigningError} when a key cannot be used.
   */
  async signatures(headers: HeaderField[], content: Uint8Array[]): Promise<Uint8Array[]> {
    const domain = fromDomain(headers);
    if (domain === null) return [];
    const value = await this.table.find(domain);
    if (value === undefined) return [];
    const out: Uint8Array[] = [];
    for (const e of parseSigningValue(value, this.keyDir)) {
      const key = await this.keys.get(e.path);
      const { DkimSignError, signMessage } = await dkim();
      try {
        out.push(enc.encode(await signMessage(content, { domain, selector: e.selector, key })));
      } catch (err) {
        // A From: domain that cannot be a d= (one label, ...): the table entry is wrong.
        if (!(err instanceof DkimSignError)) throw err;
        throw new DkimSigningError(`cannot sign for ${domain}: ${err.message}`);
      }
    }
    return out;
  }
}

/** The domain of the (first) From: address, lower case; null when there is none. */
export function fromDomain(headers: HeaderField[]): string | null {
  const from = findHeader(headers, "from");
  if (!from) return null;
  const first = parseHeaderAddresses(from.value)[0];
  if (first === undefined) return null;
  const domain = splitAddress(first).domain.toLowerCase().replace(/\.$/, "");
  return domain === "" ? null : domain;
}
