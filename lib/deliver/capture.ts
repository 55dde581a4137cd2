/**
 * postwarden_capture: the capture mode of `postwarden test`'s ephemeral
 * instance (lib/testrun). When the parameter names an address (HOST:PORT,
 * the test runner's sink), nothing the delivery agents do leaves the
 * instance:
 *
 * - smtp and lmtp connect every session, TCP or UNIX-domain, to the sink
 *   instead of the next hop they chose; their log lines still name that
 *   next hop (relay=mx.example.net[192.0.2.1]:25), so a test sees where the
 *   real system would have sent the mail;
 * - pipe and local do not run commands or write files named by aliases
 *   and .forward files: they log what they would have run or written
 *   ("captured: would run ...") and report the recipient delivered;
 * - cleanup logs each recipient of a message it queued ("capture: to=<..>"),
 *   which the runner reads as what was queued.
 *
 * Mailboxes are written as usual: the runner points mail_spool_directory
 * and virtual_mailbox_base into its temporary folder.
 *
 * @module
 */

/** The sink's address. */
export interface CaptureSink {
  hostname: string;
  port: number;
}

/**
 * postwarden_capture's value as an address, null when empty. Throws for
 * anything but `IPV4:PORT` or `[IPV6]:PORT` (a typo must not let the
 * test instance deliver for real).
 */
export function parseCapture(value: string): CaptureSink | null {
  const v = value.trim();
  if (v === "") return null;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v) ??
    /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`"${v}" is not an address:port (127.0.0.1:2525, [::1]:2525)`);
  }
  return { hostname: m[1], port };
}

/** The sink of a configuration, or null; a malformed value throws (the configuration check says so first). */
export function captureSink(param: (name: string) => string | undefined): CaptureSink | null {
  return parseCapture(param("postwarden_capture") ?? "");
}

/** The sink as an --allow-net item. */
export function captureGrant(sink: CaptureSink): string {
  return sink.hostname.includes(":")
    ? `[${sink.hostname}]:${sink.port}`
    : `${sink.hostname}:${sink.port}`;
}

/**
 * Connect functions for smtp and lmtp: to the sink when one is set (read
 * through `sink()` at each connect, as the configuration is known only
 * once the daemon runs), else where asked.
 */
export function captureConnects(sink: () => CaptureSink | null): {
  connect: (o: Deno.ConnectOptions & { signal?: AbortSignal }) => Promise<Deno.TcpConn>;
  connectUnix: (o: Deno.UnixConnectOptions) => Promise<Deno.TcpConn | Deno.UnixConn>;
} {
  return {
    connect: (o) => {
      const s = sink();
      return Deno.connect(s ? { ...o, ...s, transport: "tcp" } : { ...o, transport: "tcp" });
    },
    connectUnix: (o) => {
      const s = sink();
      return s ? Deno.connect({ ...s, transport: "tcp" }) : Deno.connect(o);
    },
  };
}

/** An argv as one readable line: plain words as they are, others JSON-quoted. */
export function argvText(argv: string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)).join(" ");
}

/** True in capture mode: commands and files are logged, not run or written. */
export function capturing(config: { str(name: string): string }): boolean {
  return config.str("postwarden_capture").trim() !== "";
}
