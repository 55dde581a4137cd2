/**
 * A validating resolver for tests: unbound (Debian's) on a loopback
 * address, authoritative for the test's zones, some of them DNSSEC-signed
 * here with ldns-signzone (each its own keys, its KSK a trust anchor), so
 * that its answers carry the AD bit exactly for the signed ones. A test
 * may alter a signed zone after signing (`alter`) to make records bogus.
 * Needs {@link UNBOUND_PROGRAMS} (tests/helpers/peers.ts havePeer).
 *
 * @module
 */
import { dnssecResolver } from "../../lib/dane/mod.ts";

/** unbound and the ldnsutils programs that sign the zones. */
export const UNBOUND_PROGRAMS = [
  "/usr/sbin/unbound",
  "/usr/bin/ldns-keygen",
  "/usr/bin/ldns-signzone",
];

/** One zone: records in zone file syntax, relative to `origin` (SOA and NS are added). */
export interface TestZone {
  origin: string;
  records: string;
  signed: boolean;
  /** Changes the signed zone file's text (records altered after signing are bogus). */
  alter?: (signedText: string) => string;
}

/** A running unbound. */
export interface TestUnbound {
  hostname: string;
  port: number;
  stop(): Promise<void>;
}

async function sh(cwd: string, cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * Writes and signs the zones in `dir` (which the caller removes), starts
 * unbound on hostname:port (port 0: a free UDP port of 127.0.0.1's) and
 * resolves when it answers for the first zone.
 */
export async function startUnbound(
  dir: string,
  opts: { hostname?: string; port?: number; zones: TestZone[] },
): Promise<TestUnbound> {
  const hostname = opts.hostname ?? "127.0.0.1";
  let port = opts.port ?? 0;
  if (port === 0) {
    const probe = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    port = (probe.addr as Deno.NetAddr).port;
    probe.close();
  }
  const anchors: string[] = [];
  const zones: string[] = [];
  for (const z of opts.zones) {
    const file = `${dir}/${z.origin}.zone`;
    await Deno.writeTextFile(
      file,
      `$ORIGIN ${z.origin}.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\n` +
        `ns A 127.0.0.1\n${z.records}`,
    );
    let served = file;
    if (z.signed) {
      const ksk = await sh(dir, "ldns-keygen", "-a", "ECDSAP256SHA256", "-k", z.origin);
      const zsk = await sh(dir, "ldns-keygen", "-a", "ECDSAP256SHA256", z.origin);
      served = `${file}.signed`;
      await sh(dir, "ldns-signzone", "-f", served, file, ksk, zsk);
      if (z.alter) await Deno.writeTextFile(served, z.alter(await Deno.readTextFile(served)));
      anchors.push(`  trust-anchor-file: "${dir}/${ksk}.ds"\n`);
    }
    zones.push(
      `auth-zone:\n  name: "${z.origin}"\n  zonefile: "${served}"\n` +
        "  for-upstream: yes\n  for-downstream: no\n",
    );
  }
  const tld = opts.zones[0].origin.split(".").pop();
  await Deno.writeTextFile(
    `${dir}/unbound.conf`,
    `server:
  interface: ${hostname}
  port: ${port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-not-query-localhost: no
  module-config: "validator iterator"
${anchors.join("")}  local-zone: "${tld}." nodefault
${zones.join("")}`,
  );
  const proc = new Deno.Command("/usr/sbin/unbound", {
    args: ["-d", "-c", `${dir}/unbound.conf`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      proc.kill("SIGTERM");
    } catch {
      // gone
    }
    const status = await proc.output();
    if (!status.success && status.signal !== "SIGTERM") {
      console.warn(new TextDecoder().decode(status.stderr));
    }
  };
  const probe = dnssecResolver({ nameServer: { ipAddr: hostname, port }, timeoutMs: 200 });
  for (let i = 0;; i++) {
    try {
      await probe.a(`ns.${opts.zones[0].origin}`);
      break;
    } catch (e) {
      if (i > 50) {
        await stop();
        throw new Error(`unbound does not answer: ${e}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { hostname, port, stop };
}
