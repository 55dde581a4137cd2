/**
 * The SMTP client's side of STARTTLS (RFC 3207): the TLS handshake over an
 * open connection with `node:tls` (rustls), what the server's certificate
 * proves, and the log line Postfix writes about it.
 *
 * The handshake never rejects a certificate itself: like Postfix's
 * tls_client_start() it completes, records whether the chain is trusted
 * (by smtp_tls_CAfile/smtp_tls_CApath only: with neither, nothing is
 * trusted, as Postfix without tls_append_default_CA) and whether a name
 * matches, and the caller decides what the security level requires
 * (deliver.ts). A session on a protocol or a TLSv1.2 suite the site's
 * policy excludes is abandoned here as a failed handshake
 * (lib/tls/client_policy.ts says why this is how those settings are
 * honoured).
 *
 * Trust anchors are read once per process from the CA file and the PEM
 * files of the CA directory (the daemon's sandbox grants read access to
 * exactly those, lib/permissions).
 *
 * At the effective level "dane" (dane.ts) the chain is matched against
 * the host's usable TLSA records instead (lib/dane matchTlsa): trusted and
 * matched then both mean that a record matched, and the CA anchors play
 * no part.
 *
 * Does not: present a client certificate, resume sessions.
 */
import { type ByteStream, connDuplex, socketStream } from "../../lib/tls/duplex.ts";
import type { TLSSocket as TLSSocketType } from "node:tls";
import { certificateMatches, type SiteTls } from "../../lib/tls/client_policy.ts";
import { pemBlocks } from "../../lib/tls/material.ts";

export type { ByteStream } from "../../lib/tls/duplex.ts";

/**
 * The line Postfix 3.7 logs when verify or secure finds the chain
 * untrusted or the name unmatched (tls_verify.c's wording).
 */
export function verificationFailure(where: string, info: ClientTlsInfo): string | null {
  if (info.matched) return null;
  if (info.tlsaFailure !== undefined) {
    return `server certificate verification failed for ${where}: DANE: ${info.tlsaFailure}`;
  }
  if (info.trusted) {
    return `server certificate verification failed for ${where}: num=62:hostname mismatch`;
  }
  const why = info.verifyError ?? "";
  let text: string;
  if (why === "CERT_HAS_EXPIRED") text = "certificate has expired";
  else if (why === "CERT_NOT_YET_VALID") text = "certificate not yet valid";
  else if (/ISSUER|LEAF_SIGNATURE|SELF_SIGNED|^$/.test(why)) {
    text = `untrusted issuer ${info.issuer}`;
  } else text = why.toLowerCase().replaceAll("_", " ");
  return `certificate verification failed for ${where}: ${text}`;
}

/** What a completed handshake established. */
export interface ClientTlsInfo {
  protocol: string;
  cipher: string;
  bits: number;
  /** The chain verifies against the configured trust anchors. */
  trusted: boolean;
  /** Trusted, and a certificate name matches the site's patterns. */
  matched: boolean;
  /** Why the chain is not trusted (the library's code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE). */
  verifyError: string | null;
  /** The server certificate's issuer, as OpenSSL's one-line form ("/CN=Test CA"). */
  issuer: string;
  /** At level dane: why no TLSA record matched the chain (absent when one did). */
  tlsaFailure?: string;
}

/** The handshake failed or was abandoned; `message` says why, for the warning. */
export class TlsHandshakeFailure extends Error {
  override readonly name = "TlsHandshakeFailure";
}

/** Key bits of a cipher, from its name (all the library's suites are AEAD). */
function cipherBits(cipher: string): number {
  if (/AES_?128/i.test(cipher)) return 128;
  if (/AES_?256|CHACHA20/i.test(cipher)) return 256;
  return 0;
}

/**
 * Postfix's summary: "Verified TLS connection established to
 * host[addr]:port: TLSv1.3 with cipher ...". At the levels that match
 * names (verify, secure) Postfix 3.7 verifies chain and name together, so
 * a trusted chain with a name that does not match is "Untrusted" there.
 */
export function establishedLine(
  where: string,
  info: ClientTlsInfo,
  matching: boolean,
): string {
  const how = info.matched ? "Verified" : info.trusted && !matching ? "Trusted" : "Untrusted";
  return `${how} TLS connection established to ${where}: ${info.protocol} with cipher ` +
    `${info.cipher} (${info.bits}/${info.bits} bits)`;
}

const anchorCache = new Map<string, Promise<string[]>>();

/**
 * The trusted CA certificates (PEM blocks) of smtp_tls_CAfile and the
 * files in smtp_tls_CApath, read once per process. Throws when the file
 * or directory cannot be read.
 */
export function trustAnchors(caFile: string, caPath: string): Promise<string[]> {
  const key = `${caFile}\0${caPath}`;
  let p = anchorCache.get(key);
  if (!p) {
    p = readAnchors(caFile, caPath);
    anchorCache.set(key, p);
    p.catch(() => anchorCache.delete(key));
  }
  return p;
}

async function readAnchors(caFile: string, caPath: string): Promise<string[]> {
  const out: string[] = [];
  const take = (text: string) => {
    for (const b of pemBlocks(text)) if (b.label === "CERTIFICATE") out.push(b.pem);
  };
  if (caFile) take(await Deno.readTextFile(caFile));
  if (caPath) {
    for await (const e of Deno.readDir(caPath)) {
      if (e.isDirectory) continue;
      try {
        take(await Deno.readTextFile(`${caPath}/${e.name}`));
      } catch {
        // a dangling link or a file that is not text: not a CA certificate
      }
    }
  }
  return out;
}

/** What {@link startClientTls} needs. */
export interface ClientTlsOptions {
  site: SiteTls;
  /** Trust anchors (PEM); empty: nothing is trusted. */
  anchors: string[];
  /** The server's host name (SNI, unless it is an address) and the next hop domain. */
  names: { hostname: string; nexthop: string };
  /** smtp_starttls_timeout in seconds. */
  timeoutSec: number;
}

/**
 * Runs the client handshake over `conn` (nothing of it may be buffered
 * elsewhere: the caller discards plaintext read after the 220 reply).
 * Throws {@link TlsHandshakeFailure}; the caller closes `conn` then.
 */
export async function startClientTls(
  conn: Deno.TcpConn | Deno.UnixConn,
  opts: ClientTlsOptions,
): Promise<{ stream: ByteStream; info: ClientTlsInfo }> {
  const tls = await import("node:tls");
  const { Duplex } = await import("node:stream");
  const versions = [...opts.site.protocols].sort();
  const sni = /^[a-z0-9.-]+$/i.test(opts.names.hostname) && /[a-z]/i.test(opts.names.hostname)
    ? opts.names.hostname
    : undefined;
  const duplex = connDuplex(Duplex, conn, { closeOnDestroy: true });
  const socket: TLSSocketType = tls.connect({
    socket: duplex,
    ...(sni ? { servername: sni } : {}),
    ca: opts.anchors,
    rejectUnauthorized: false,
    // Names are matched below against the level's patterns, not the library's idea.
    checkServerIdentity: () => undefined,
    minVersion: versions[0] as "TLSv1.2" | "TLSv1.3",
    maxVersion: versions[versions.length - 1] as "TLSv1.2" | "TLSv1.3",
  });
  // Without a listener an 'error' event would end the whole daemon.
  let failure: Error | null = null;
  socket.on("error", (e: Error) => failure ??= e);
  duplex.on("error", () => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new TlsHandshakeFailure("TLS handshake timeout")),
        opts.timeoutSec * 1000,
      );
      socket.once("secureConnect", () => resolve());
      socket.once("error", (e: Error) => reject(new TlsHandshakeFailure(e.message)));
      socket.once("close", () => reject(new TlsHandshakeFailure("lost connection")));
    });
  } catch (e) {
    socket.destroy();
    throw e instanceof TlsHandshakeFailure ? e : new TlsHandshakeFailure(String(e));
  } finally {
    clearTimeout(timer);
  }
  const c = socket.getCipher();
  const protocol = socket.getProtocol() ?? c.version;
  if (!opts.site.protocols.has(protocol as "TLSv1.2" | "TLSv1.3")) {
    socket.destroy();
    throw new TlsHandshakeFailure(`protocol ${protocol} is not allowed by the TLS policy`);
  }
  if (protocol === "TLSv1.2" && opts.site.excluded.has(c.name)) {
    socket.destroy();
    throw new TlsHandshakeFailure(`cipher ${c.name} is excluded by the TLS policy`);
  }
  if (opts.site.level === "dane" && opts.site.tlsa) {
    return { stream: socketStream(socket, () => failure), info: await daneInfo(socket, opts) };
  }
  const trusted = opts.anchors.length > 0 && socket.authorized === true;
  const cert = socket.getPeerCertificate(false) as unknown as
    | {
      subject?: { CN?: string | string[] };
      issuer?: Record<string, string | string[]>;
      raw?: Uint8Array;
    }
    | undefined;
  // The DNS names from the certificate itself: node:tls's subjectaltname string cannot be
  // split safely (one name "a, DNS:evil.test" reads as two).
  const dnsNames = trusted && cert?.raw ? await certificateDnsNames(cert.raw) : [];
  const cn = cert?.subject?.CN;
  const commonName = Array.isArray(cn) ? cn[cn.length - 1] : cn ?? null;
  const matched = trusted && opts.site.match.length > 0 &&
    certificateMatches({ dnsNames, commonName }, opts.site.match, opts.names);
  const info: ClientTlsInfo = {
    protocol,
    cipher: c.name,
    bits: cipherBits(c.name),
    trusted,
    matched,
    verifyError: trusted
      ? null
      : opts.anchors.length
      ? String(socket.authorizationError ?? "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
      : "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    issuer: issuerText(cert?.issuer),
  };
  return { stream: socketStream(socket, () => failure), info };
}

/** What the handshake established at level dane: the chain against the TLSA records. */
async function daneInfo(socket: TLSSocketType, opts: ClientTlsOptions): Promise<ClientTlsInfo> {
  const { matchTlsa, peerChain } = await import("../../lib/dane/match.ts");
  const c = socket.getCipher();
  const peer = socket.getPeerCertificate(true) as unknown as
    | { raw?: Uint8Array; issuerCertificate?: unknown; issuer?: Record<string, string | string[]> }
    | undefined;
  const chain = peer?.raw ? peerChain(peer as { raw: Uint8Array }) : [];
  const m = matchTlsa(opts.site.tlsa!.records, chain, opts.site.tlsa!.names);
  return {
    protocol: socket.getProtocol() ?? c.version,
    cipher: c.name,
    bits: cipherBits(c.name),
    trusted: m.ok,
    matched: m.ok,
    verifyError: null,
    issuer: issuerText(peer?.issuer),
    ...(m.ok ? {} : { tlsaFailure: m.reason }),
  };
}

function issuerText(issuer: Record<string, string | string[]> | undefined): string {
  return Object.entries(issuer ?? {}).flatMap(([k, v]) =>
    (Array.isArray(v) ? v : [v]).map((x) => `/${k}=${x}`)
  ).join("");
}

/** The subjectAltName DNS names of a DER certificate; none when it cannot be read. */
async function certificateDnsNames(der: Uint8Array): Promise<string[]> {
  const { readCertificate } = await import("../../lib/dane/cert.ts");
  try {
    return readCertificate(new Uint8Array(der)).dnsNames;
  } catch {
    return [];
  }
}
