/**
 * smtpd's certificate and private key: read by master (root, when started
 * as root) before any daemon runs, checked, and handed to smtpd over its
 * start-up channel (stdin), as Postfix's smtpd reads them as root before
 * it drops privileges. smtpd itself has no read grant on the key file: a
 * compromised smtpd can use the key it holds but cannot read others, and
 * the file can stay root-only (0600).
 *
 * Checks, with Postfix-like warnings: a private key file readable by group
 * or others, or not owned by root when master runs as root. Errors (the
 * caller disables TLS with "may", stops the start with mandatory TLS):
 * no certificate configured, an unreadable file, no or several private
 * keys, an encrypted key, a certificate that does not parse, a key that
 * does not match the certificate.
 *
 * Files come from smtpd_tls_chain_files when set (each: a private key, then
 * its certificate chain; one key only), else smtpd_tls_cert_file (the
 * certificate, then its chain) and smtpd_tls_key_file (which may be the
 * same file). Uses node:crypto, imported only when TLS is configured.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import { type SmtpdTlsPolicy, smtpdTlsPolicy, tlsMandatory, tlsWanted } from "./policy.ts";

/** What smtpd gets: PEM text, never file names to open. */
export interface TlsMaterial {
  /** The private key (one PEM block). */
  key: string;
  /** The certificate, then its chain (PEM blocks). */
  certs: string;
  /** The certificate's subject, for logs and audit ("CN=mx.example.org"). */
  subject: string;
  /** The files it was read from. */
  files: string[];
}

/** File facts the checks need (Deno.stat gives them). */
export interface FileFacts {
  uid: number | null;
  mode: number | null;
}

/** I/O for {@link loadTlsMaterial}, injected so tests need no root. */
export interface MaterialIo {
  readFile(path: string): Promise<string>;
  stat(path: string): Promise<FileFacts>;
  /** Master runs as root: key files should be owned by root. */
  asRoot: boolean;
}

/** The result: material or an error, and warnings either way. */
export interface MaterialResult {
  material: TlsMaterial | null;
  error: string | null;
  warnings: string[];
}

const NO_CERT = "no server certificate (smtpd_tls_cert_file and smtpd_tls_chain_files are empty)";

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The PEM blocks in a text, with their labels. */
export function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: m[0] }));
}

/** Deno's stat as {@link FileFacts}. */
export async function denoStat(path: string): Promise<FileFacts> {
  const s = await Deno.stat(path);
  return { uid: s.uid, mode: s.mode };
}

/** Reads and checks smtpd's certificate and key (see the module comment). */
export async function loadTlsMaterial(p: SmtpdTlsPolicy, io: MaterialIo): Promise<MaterialResult> {
  const warnings: string[] = [];
  const fail = (error: string): MaterialResult => ({ material: null, error, warnings });
  let keyFiles: string[];
  let certFiles: string[];
  if (p.chainFiles.length) {
    keyFiles = p.chainFiles;
    certFiles = p.chainFiles;
  } else if (p.certFile) {
    keyFiles = [p.keyFile || p.certFile];
    certFiles = [p.certFile];
  } else {
    return fail(NO_CERT);
  }
  const files = [...new Set([...certFiles, ...keyFiles])];
  const texts = new Map<string, string>();
  for (const f of files) {
    try {
      texts.set(f, await io.readFile(f));
    } catch (e) {
      const what = certFiles.includes(f) ? "certificate" : "private key";
      return fail(`cannot read ${what} file "${f}": ${(e as Error).message}`);
    }
  }
  for (const f of keyFiles) {
    let facts: FileFacts;
    try {
      facts = await io.stat(f);
    } catch {
      continue; // read above; gone since
    }
    if (facts.mode !== null && (facts.mode & 0o077) !== 0) {
      warnings.push(
        `private key file "${f}" is accessible by group or others (mode ${
          (facts.mode & 0o777).toString(8).padStart(4, "0")
        }); make it readable by root only (chmod 600)`,
      );
    }
    if (io.asRoot && facts.uid !== null && facts.uid !== 0) {
      warnings.push(`private key file "${f}" is not owned by root (uid ${facts.uid})`);
    }
  }
  const keys = keyFiles.flatMap((f) => pemBlocks(texts.get(f)!)).filter((b) =>
    /PRIVATE KEY$/.test(b.label)
  );
  const uniqueKeys = [...new Set(keys.map((k) => k.pem))];
  const certs = certFiles.flatMap((f) => pemBlocks(texts.get(f)!)).filter((b) =>
    b.label === "CERTIFICATE"
  );
  const keyWhere = keyFiles.join(", ");
  if (uniqueKeys.length === 0) return fail(`no private key in "${keyWhere}"`);
  if (uniqueKeys.length > 1) {
    return fail(
      `more than one private key in "${keyWhere}": several key types (RSA and ECDSA) are not ` +
        "supported by Postwarden; give one key and its chain",
    );
  }
  const key = uniqueKeys[0];
  if (/^-----BEGIN ENCRYPTED PRIVATE KEY/.test(key) || /Proc-Type: 4,ENCRYPTED/.test(key)) {
    return fail(`the private key in "${keyWhere}" is encrypted; give an unencrypted key`);
  }
  if (certs.length === 0) return fail(`no certificate in "${certFiles.join(", ")}"`);
  const { X509Certificate, createPrivateKey } = await import("node:crypto");
  let subject: string;
  try {
    const leaf = new X509Certificate(certs[0].pem);
    const priv = createPrivateKey(key);
    if (!leaf.checkPrivateKey(priv)) {
      return fail(
        `the private key in "${keyWhere}" does not match the certificate in "${
          certFiles.join(", ")
        }"`,
      );
    }
    subject = leaf.subject.replaceAll("\n", ", ");
    for (const c of certs.slice(1)) new X509Certificate(c.pem);
  } catch (e) {
    return fail(
      `cannot use the certificate and key in "${files.join(", ")}": ${(e as Error).message}`,
    );
  }
  return {
    material: { key, certs: certs.map((c) => c.pem).join("\n") + "\n", subject, files },
    error: null,
    warnings,
  };
}

/** What master learns about its smtpd services' TLS at start. */
export interface ServicesTls {
  /** Material per service name (only services with a usable certificate). */
  material: Map<string, TlsMaterial>;
  /** Problems that stop the start: mandatory TLS without a usable certificate. */
  errors: string[];
  warnings: string[];
}

/**
 * Reads the certificate and key of each smtpd service that uses TLS, with
 * that service's configuration (`configOf`: main.cf plus its master.cf -o).
 */
export async function servicesTls<S extends { name: string; command: string }>(
  services: S[],
  configOf: (svc: S) => Promise<Config>,
  io: MaterialIo,
): Promise<ServicesTls> {
  const out: ServicesTls = { material: new Map(), errors: [], warnings: [] };
  for (const svc of services) {
    if (svc.command !== "smtpd") continue;
    const { policy } = smtpdTlsPolicy(await configOf(svc));
    if (!tlsWanted(policy)) continue;
    const r = await loadTlsMaterial(policy, io);
    const where = `master.cf: service ${svc.name}`;
    out.warnings.push(...r.warnings.map((w) => `${where}: ${w}`));
    if (r.material) out.material.set(svc.name, r.material);
    else if (tlsMandatory(policy)) {
      const why = policy.wrapper
        ? "smtpd_tls_wrappermode = yes"
        : "smtpd_tls_security_level = encrypt";
      out.errors.push(`${where}: ${why} needs a usable certificate: ${r.error}`);
    } else if (r.error !== NO_CERT) { // smtpd says it, as Postfix's smtpd does
      out.warnings.push(`${where}: ${r.error}: disabling TLS support`);
    }
  }
  return out;
}
