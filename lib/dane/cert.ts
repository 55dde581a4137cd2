/**
 * What DANE needs of an X.509 certificate: its DER, its
 * SubjectPublicKeyInfo exactly as encoded in the certificate (RFC 6698
 * selector 1 hashes those bytes, not a re-encoding of the key), its DNS
 * names and common names for the name checks of DANE-TA (RFC 7672 3.2.3),
 * its validity period, and whether another certificate issued it.
 *
 * Signatures, key handling and the validity dates come from node:crypto's
 * X509Certificate. The names and the SPKI are read from the DER with a
 * small reader of our own: X509Certificate's `subjectAltName` string
 * cannot be split safely (Deno 2.9 prints a DNS name holding ", DNS:x" as
 * is, so one name reads as two) and its checkHost() has neither wildcards
 * nor case folding. The reader follows only the path to those fields,
 * checks every length against its parent, and throws
 * {@link CertificateError} on anything it cannot read.
 *
 * {@link hostnameMatches} is the one host name pattern rule of this code:
 * a certificate's DNS-ID against a reference name here, an MTA-STS mx
 * pattern against an MX host in lib/mtasts.
 *
 * Does not: check key usage, extended key usage, name constraints,
 * policies or revocation; read IP address, URI or SRV names.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** A certificate that cannot be read. */
export class CertificateError extends Error {
  override readonly name = "CertificateError";
}

/** One certificate of a peer's chain, read once. */
export interface PeerCertificate {
  der: Uint8Array;
  /** The SubjectPublicKeyInfo as encoded in the certificate. */
  spki: Uint8Array;
  /** dNSName entries of the subjectAltName extension, lower case. */
  dnsNames: string[];
  /** The subject's commonName values (used only when there are no DNS names). */
  commonNames: string[];
  x509: X509Certificate;
}

/** One DER element: its tag and where its contents start and end. */
interface Tlv {
  tag: number;
  /** Where its header starts. */
  at: number;
  start: number;
  end: number;
}

function tlv(b: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new CertificateError("truncated DER element");
  const tag = b[pos];
  if ((tag & 0x1f) === 0x1f) throw new CertificateError("multi-octet DER tag");
  let len = b[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || start + n > limit) throw new CertificateError("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  if (start + len > limit) throw new CertificateError("DER element runs past its parent");
  return { tag, at: pos, start, end: start + len };
}

function children(b: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const c = tlv(b, p, parent.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new CertificateError(`no ${what}`);
  return t;
}

const OID_CN = "550403"; // 2.5.4.3
const OID_SAN = "551d11"; // 2.5.29.17
const latin1 = new TextDecoder("latin1");
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A directory string as text; types other than UTF8, Printable, IA5 and T61 give null. */
function stringValue(b: Uint8Array, t: Tlv): string | null {
  const bytes = b.subarray(t.start, t.end);
  if (t.tag === 0x0c) return new TextDecoder().decode(bytes);
  if (t.tag === 0x13 || t.tag === 0x16 || t.tag === 0x14) return latin1.decode(bytes);
  return null;
}

/** Reads one DER certificate. Throws {@link CertificateError} when it cannot. */
export function readCertificate(der: Uint8Array): PeerCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (e) {
    throw new CertificateError(`not a certificate: ${(e as Error).message}`);
  }
  const cert = expect(tlv(der, 0, der.length), 0x30, "certificate");
  const tbs = children(der, expect(children(der, cert)[0], 0x30, "tbsCertificate"));
  const first = tbs[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  // serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo
  const subject = expect(tbs[first + 4], 0x30, "subject");
  const spki = expect(tbs[first + 5], 0x30, "subjectPublicKeyInfo");
  const commonNames: string[] = [];
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, expect(rdn, 0x31, "RDN"))) {
      const [oid, value] = children(der, expect(atv, 0x30, "attribute"));
      if (oid?.tag !== 0x06 || !value || hex(der.subarray(oid.start, oid.end)) !== OID_CN) continue;
      const cn = stringValue(der, value);
      if (cn !== null) commonNames.push(cn);
    }
  }
  const dnsNames: string[] = [];
  const extensions = tbs.slice(first + 6).find((t) => t.tag === 0xa3);
  if (extensions) {
    for (const ext of children(der, expect(children(der, extensions)[0], 0x30, "extensions"))) {
      const parts = children(der, expect(ext, 0x30, "extension"));
      const oid = expect(parts[0], 0x06, "extension OID");
      if (hex(der.subarray(oid.start, oid.end)) !== OID_SAN) continue;
      const value = expect(parts.at(-1), 0x04, "extension value");
      const names = expect(tlv(der, value.start, value.end), 0x30, "GeneralNames");
      for (const gn of children(der, names)) {
        if (gn.tag === 0x82) {
          dnsNames.push(latin1.decode(der.subarray(gn.start, gn.end)).toLowerCase());
        }
      }
    }
  }
  return { der, spki: der.subarray(spki.at, spki.end), dnsNames, commonNames, x509 };
}

/** True when `issuer` issued `cert`: its subject is cert's issuer and its key verifies cert's signature. */
export function issued(issuer: PeerCertificate, cert: PeerCertificate): boolean {
  try {
    return cert.x509.checkIssued(issuer.x509) && cert.x509.verify(issuer.x509.publicKey);
  } catch {
    return false; // a key type node:crypto cannot verify with
  }
}

/** Whether `now` lies within the certificate's validity period; else why not. */
export function validityProblem(cert: PeerCertificate, now: Date): string | null {
  const from = cert.x509.validFromDate;
  const to = cert.x509.validToDate;
  if (!(now >= from)) return `certificate not yet valid (from ${from.toISOString()})`;
  if (!(now <= to)) return `certificate expired (${to.toISOString()})`;
  return null;
}

/**
 * Whether a presented name (a certificate's DNS-ID, an MTA-STS mx pattern)
 * matches a reference host name (RFC 6125 6.4): equal ignoring case and a
 * trailing dot, or "*.rest" where the reference is one label followed by
 * "rest", and "rest" has at least two labels ("*.example.com" matches
 * "mx.example.com", not "example.com" nor "a.mx.example.com"; "*.com"
 * matches nothing). A "*" anywhere else matches nothing.
 */
export function hostnameMatches(presented: string, reference: string): boolean {
  const p = presented.toLowerCase().replace(/\.$/, "");
  const r = reference.toLowerCase().replace(/\.$/, "");
  if (r === "" || r.includes("*")) return false;
  if (!p.startsWith("*.")) return !p.includes("*") && p === r;
  const rest = p.slice(2);
  const dot = r.indexOf(".");
  return !rest.includes("*") && rest.includes(".") && dot > 0 && r.slice(dot + 1) === rest;
}

/**
 * Whether the certificate is for one of `names`: its DNS names, or its
 * common names when it has no DNS name (RFC 7672 3.2.3, RFC 6125 6.4.4).
 */
export function certificateMatchesName(cert: PeerCertificate, names: string[]): boolean {
  const ids = cert.dnsNames.length ? cert.dnsNames : cert.commonNames;
  return ids.some((id) => names.some((n) => hostnameMatches(id, n)));
}
