/**
 * Real milters for interop tests (Debian packages installed by
 * scripts/install-peers.sh), each started privately by the test: a
 * temporary folder holds its configuration and state, it listens on a
 * free TCP port on 127.0.0.1, runs in the foreground as a child process
 * of the test, and `stop()` ends it and removes the folder. Nothing here
 * touches the system's own services or configuration, or the network.
 *
 * - OpenDKIM ({@link startOpenDkim}): signs with a key made by
 *   opendkim-genkey and verifies against the public key from a file
 *   (`TestPublicKeys`, opendkim.conf(5)), not DNS; the TXT record is
 *   returned too, for a test's own DNS server (tests/helpers/dns_server.ts)
 *   or another verifier.
 * - rspamd ({@link startRspamd}): the rspamd_proxy worker in milter mode
 *   scanning itself (`self_scan`), with a configuration written from
 *   scratch rather than Debian's: milter_headers and Debian's actions, so
 *   no module that needs Redis, DNS or HTTP maps is loaded. It rejects
 *   {@link GTUBE} (a check built into rspamd) and annotates other mail.
 * - ClamAV ({@link startClamavMilter}): clamd with a one-signature
 *   database that finds {@link EICAR} (no freshclam, no download), and
 *   clamav-milter in front of it rejecting infected mail.
 *
 * Every start function returns null when its peer is missing or the test
 * is not root (a loud skip; under CI=true a failure), and throws, with
 * the peer's output, when the peer does not come up within 30 s. Always
 * `stop()` a peer in a finally. {@link milterMessage} plays the MTA with
 * miltertest(8): one message through a milter, its reply and added
 * header fields.
 *
 * @module
 */
import { freePort } from "./instance.ts";
import { havePeer, haveRoot, run } from "./peers.ts";

/** The OpenDKIM milter (opendkim). */
export const OPENDKIM = "/usr/sbin/opendkim";
/** Makes DKIM keys and their TXT records (opendkim-tools). */
export const OPENDKIM_GENKEY = "/usr/sbin/opendkim-genkey";
/** rspamd, whose proxy worker is a milter (rspamd). */
export const RSPAMD = "/usr/bin/rspamd";
/** The ClamAV scanning daemon (clamav-daemon). */
export const CLAMD = "/usr/sbin/clamd";
/** The milter in front of clamd (clamav-milter). */
export const CLAMAV_MILTER = "/usr/sbin/clamav-milter";
/** Runs Lua scripts that speak the milter protocol as an MTA (miltertest(8)). */
export const MILTERTEST = "/usr/bin/miltertest";

/** The EICAR anti-virus test file (68 bytes); clamav-milter's database finds it anywhere. */
export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/** The GTUBE spam test string; rspamd rejects a message whose text holds it. */
export const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/** How long a peer may take to accept connections. */
const START_MS = 30_000;

/**
 * For daemons that notice SIGTERM only when a poll times out (libmilter's
 * listener: 5 s; clamd: 2 s) and keep nothing worth a clean exit: SIGKILL
 * after half a second.
 */
const QUICK_STOP = { stopGraceMs: 500 };

/** A running milter. */
export interface MilterPeer {
  /** Its temporary folder (configuration, state, logs). */
  dir: string;
  /** Its TCP port on 127.0.0.1. */
  port: number;
  /** The milter's address as smtpd_milters names it: `inet:127.0.0.1:PORT`. */
  milter: string;
  /** What it logged: its output and its own log files. */
  log(): Promise<string>;
  /**
   * Ends it and removes its folder: SIGTERM, then SIGKILL after half a
   * second (OpenDKIM, clamd, clamav-milter) or 10 s (rspamd).
   */
  stop(): Promise<void>;
}

/** OpenDKIM's modes: sign, verify, or both (opendkim.conf(5) `Mode`). */
export type OpenDkimMode = "s" | "v" | "sv";

/** Options for {@link startOpenDkim}. */
export interface OpenDkimOptions {
  /** The signing domain (`d=`). */
  domain: string;
  /** The selector (`s=`). */
  selector: string;
  /** Sign mail from 127.0.0.1 and ::1 (`InternalHosts`), verify the rest, or both. */
  mode: OpenDkimMode;
}

/** A running OpenDKIM and its key. */
export interface OpenDkimPeer extends MilterPeer {
  /** The signing domain (`d=`). */
  domain: string;
  /** The selector (`s=`). */
  selector: string;
  /** Where its public key lives in DNS: `selector._domainkey.domain`. */
  txtName: string;
  /** The TXT record's text, strings joined: `v=DKIM1; h=sha256; k=rsa; p=...`. */
  txtRecord: string;
  /** The private key's PEM (opendkim-genkey's PKCS#1), for a signer of our own. */
  privateKey: string;
}

/**
 * Starts OpenDKIM (`opendkim -f -x conf`) with a new 2048-bit RSA key for
 * `domain`/`selector`, relaxed/simple canonicalization, no syslog, running
 * as the opendkim user. Mail from 127.0.0.1 and ::1 is signed; other mail
 * is verified against the key in `${dir}/public-keys` (`TestPublicKeys`),
 * so signatures by this instance pass without DNS. `RequireSafeKeys no`:
 * opendkim refuses a key below a folder others can write to, and the
 * temporary folder is below /tmp.
 */
export async function startOpenDkim(opts: OpenDkimOptions): Promise<OpenDkimPeer | null> {
  if (!haveRoot("OpenDKIM") || !havePeer(OPENDKIM) || !havePeer(OPENDKIM_GENKEY)) return null;
  const { domain, selector, mode } = opts;
  const dir = await makePeerDir("opendkim-test-");
  const daemons: Daemon[] = [];
  try {
    const gen = await run(OPENDKIM_GENKEY, [
      `--directory=${dir}`,
      `--domain=${domain}`,
      `--selector=${selector}`,
      "--bits=2048",
    ]);
    if (gen.code !== 0) throw new Error(`opendkim-genkey failed: ${gen.stderr}${gen.stdout}`);
    const txtName = `${selector}._domainkey.${domain}`;
    const txtRecord = txtFromZone(await Deno.readTextFile(`${dir}/${selector}.txt`));
    const key = `${dir}/${selector}.private`;
    const { uid, gid } = await userIds("opendkim");
    await Deno.chown(key, uid, gid);
    await Deno.writeTextFile(`${dir}/public-keys`, `${txtName} ${txtRecord}\n`, { mode: 0o644 });
    const port = freePort();
    const conf = `${dir}/opendkim.conf`;
    await Deno.writeTextFile(
      conf,
      [
        `Socket inet:${port}@127.0.0.1`,
        `Domain ${domain}`,
        `Selector ${selector}`,
        `KeyFile ${key}`,
        `Mode ${mode}`,
        "Canonicalization relaxed/simple",
        "InternalHosts 127.0.0.1, ::1",
        `TestPublicKeys ${dir}/public-keys`,
        "RequireSafeKeys no",
        "Syslog no",
        "Background no",
        "UserID opendkim:opendkim",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    daemons.push(spawnDaemon(OPENDKIM, ["-f", "-x", conf], QUICK_STOP));
    await waitListening("opendkim", port, daemons, []);
    return {
      ...peerHandle(dir, port, daemons, []),
      domain,
      selector,
      txtName,
      txtRecord,
      privateKey: await Deno.readTextFile(key),
    };
  } catch (e) {
    await stopAll(dir, daemons);
    throw e;
  }
}

/**
 * Starts rspamd 3.4 (`rspamd -f -c conf -u _rspamd -g _rspamd`) with one
 * rspamd_proxy worker in milter mode that scans mail itself (`self_scan`):
 * no normal or controller worker, no Redis. The configuration is written
 * from scratch, not Debian's with modules turned off: rspamd loads no
 * module that is not configured, so only milter_headers runs (adding
 * X-Spamd-Result, X-Spam-Status, X-Rspamd-Server and
 * Authentication-Results to all mail, local or authenticated too) with
 * Debian's actions (reject at 15, add header at 6); no rules, no C
 * filters, nothing that queries DNS or fetches maps. The resolver is
 * 127.0.0.1:1, where nothing answers, so a stray lookup fails at once
 * instead of stalling. The public-suffix list is five TLDs (com, net, org,
 * example, test): compiling the real one takes rspamd ten seconds at each
 * start. Hyperscan caches go to the private folder. {@link GTUBE} makes
 * rspamd reject the message (a milter reply with an SMTP code).
 */
export async function startRspamd(): Promise<MilterPeer | null> {
  if (!haveRoot("rspamd") || !havePeer(RSPAMD)) return null;
  const dir = await makePeerDir("rspamd-test-");
  const daemons: Daemon[] = [];
  try {
    const { uid, gid } = await userIds("_rspamd");
    const state = `${dir}/var`;
    await Deno.mkdir(state, { mode: 0o755 });
    await Deno.chown(state, uid, gid);
    await Deno.writeTextFile(`${dir}/tld.dat`, "com\nnet\norg\nexample\ntest\n", { mode: 0o644 });
    const port = freePort();
    const conf = `${dir}/rspamd.conf`;
    await Deno.writeTextFile(
      conf,
      `options {
  pidfile = "${state}/rspamd.pid";
  tempdir = "${state}";
  filters = "";
  hs_cache_dir = "${state}";
  url_tld = "${dir}/tld.dat";
  dns {
    nameserver = ["127.0.0.1:1"];
    timeout = 0.5s;
    retransmits = 1;
  }
}
logging {
  type = "file";
  filename = "${state}/rspamd.log";
  level = "info";
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:${port}";
  milter = yes;
  timeout = 120s;
  count = 1;
  upstream "local" {
    default = yes;
    self_scan = yes;
  }
}
.include "$CONFDIR/actions.conf"
modules {
  path = "$PLUGINSDIR";
}
milter_headers {
  use = ["x-spamd-result", "x-spam-status", "x-rspamd-server", "authentication-results"];
  skip_local = false;
  skip_authenticated = false;
}
`,
      { mode: 0o644 },
    );
    daemons.push(spawnDaemon(RSPAMD, [
      "-f",
      "-c",
      conf,
      "-u",
      "_rspamd",
      "-g",
      "_rspamd",
      // Debian's actions.conf includes $LOCAL_CONFDIR/local.d/actions.conf, and
      // the other paths are rspamd's defaults: all in the private folder.
      `--var=LOCAL_CONFDIR=${dir}`,
      `--var=DBDIR=${state}`,
      `--var=RUNDIR=${state}`,
      `--var=LOGDIR=${state}`,
    ]));
    const log = `${state}/rspamd.log`;
    // The main process listens before it forks its workers; a SIGTERM
    // while it forks keeps it waiting for them. Ready: every worker started.
    await waitListening("rspamd", port, daemons, [log], async () => {
      const text = await Deno.readTextFile(log).catch(() => "");
      const forked = [...text.matchAll(/prepare to fork process (\w+)/g)].map((m) => m[1]);
      return forked.length > 0 &&
        forked.every((w) => new RegExp(`starting ${w} process`).test(text));
    });
    return peerHandle(dir, port, daemons, [log]);
  } catch (e) {
    await stopAll(dir, daemons);
    throw e;
  }
}

/**
 * Starts clamd and clamav-milter, both in the foreground and as the
 * clamav user. clamd reads a database folder holding one body signature,
 * `Eicar-Test-Signature` (reported as `Eicar-Test-Signature.UNOFFICIAL`):
 * the {@link EICAR} string at any offset of any file, so in a plain text
 * body as well as in a decoded attachment; it loads in well under a
 * second, and nothing is downloaded. clamd listens on `${dir}/run/clamd.sock`;
 * clamav-milter on the TCP port, rejecting infected mail (`OnInfected
 * Reject`), accepting clean mail, deferring when clamd fails, and adding
 * X-Virus-Scanned and X-Virus-Status to what it accepts (`AddHeader
 * Replace`).
 */
export async function startClamavMilter(): Promise<MilterPeer | null> {
  if (!haveRoot("ClamAV") || !havePeer(CLAMD) || !havePeer(CLAMAV_MILTER)) return null;
  const dir = await makePeerDir("clamav-milter-test-");
  const daemons: Daemon[] = [];
  try {
    const { uid, gid } = await userIds("clamav");
    const state = `${dir}/run`;
    await Deno.mkdir(state, { mode: 0o755 });
    await Deno.chown(state, uid, gid);
    await Deno.mkdir(`${dir}/db`, { mode: 0o755 });
    const hex = Array.from(new TextEncoder().encode(EICAR), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    // .ndb: name:target type (0, any file):offset (*, anywhere):hex.
    await Deno.writeTextFile(`${dir}/db/postwarden-test.ndb`, `Eicar-Test-Signature:0:*:${hex}\n`, {
      mode: 0o644,
    });
    const socket = `${state}/clamd.sock`;
    await Deno.writeTextFile(
      `${dir}/clamd.conf`,
      [
        `LocalSocket ${socket}`,
        "LocalSocketMode 660",
        `DatabaseDirectory ${dir}/db`,
        `TemporaryDirectory ${state}`,
        `PidFile ${state}/clamd.pid`,
        `LogFile ${state}/clamd.log`,
        "LogTime yes",
        "Foreground yes",
        "User clamav",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    const port = freePort();
    await Deno.writeTextFile(
      `${dir}/clamav-milter.conf`,
      [
        `MilterSocket inet:${port}@127.0.0.1`,
        `ClamdSocket unix:${socket}`,
        "OnInfected Reject",
        "OnClean Accept",
        "OnFail Defer",
        "AddHeader Replace",
        `TemporaryDirectory ${state}`,
        `PidFile ${state}/clamav-milter.pid`,
        `LogFile ${state}/clamav-milter.log`,
        "LogTime yes",
        "LogInfected Basic",
        "LogClean Basic",
        "Foreground yes",
        "User clamav",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    daemons.push(spawnDaemon(CLAMD, ["-c", `${dir}/clamd.conf`], QUICK_STOP));
    // clamav-milter checks clamd when it starts: wait for clamd first.
    const logs = [`${state}/clamd.log`, `${state}/clamav-milter.log`];
    await waitListening("clamd", socket, daemons, logs);
    daemons.push(spawnDaemon(CLAMAV_MILTER, ["-c", `${dir}/clamav-milter.conf`], QUICK_STOP));
    await waitListening("clamav-milter", port, daemons, logs);
    return peerHandle(dir, port, daemons, logs);
  } catch (e) {
    await stopAll(dir, daemons);
    throw e;
  }
}

/** One message as an MTA hands it to a milter, for {@link milterMessage}. */
export interface MilterMessage {
  /** The client's IP address (`mt.conninfo`). @default "192.0.2.1" */
  clientIp?: string;
  /** The client's host name. @default "client.example" */
  clientName?: string;
  /** The envelope sender, without angle brackets. */
  from: string;
  /** The envelope recipients, without angle brackets. */
  to: string[];
  /** Header fields in order, as [name, value]. */
  headers: [string, string][];
  /** The body, CRLF line ends. */
  body: string;
}

/** What a milter made of a message, as miltertest saw it. */
export interface MilterVerdict {
  /** The last reply: accept, continue, reject, tempfail, discard, replycode (a reply with an SMTP code), ... */
  reply: string;
  /** The step it came at: connect, helo, mail, rcpt, header, eoh, body or eom. */
  step: string;
  /** Header fields added (`insert: false`) or inserted at end of message, of the names asked for. */
  added: { name: string; value: string; insert: boolean }[];
}

const REPLIES: Record<string, string> = {
  a: "accept",
  c: "continue",
  r: "reject",
  t: "tempfail",
  d: "discard",
  y: "replycode",
  q: "quarantine",
  s: "skip",
};

/**
 * Hands one message to the milter on 127.0.0.1:`port` with miltertest, step
 * by step (the steps the milter negotiated away are left out), and
 * reports its reply and, at end of message, the header fields it added of
 * the names in `headers`. Stops at the first reply that is not continue.
 * Throws with miltertest's output if the script fails.
 */
export async function milterMessage(
  port: number,
  msg: MilterMessage,
  opts: { headers?: string[] } = {},
): Promise<MilterVerdict> {
  const q = luaString;
  const steps: [string, string, string][] = [
    ["helo", "SMFIP_NOHELO", `mt.helo(conn, ${q(msg.clientName ?? "client.example")})`],
    ["mail", "SMFIP_NOMAIL", `mt.mailfrom(conn, ${q(`<${msg.from}>`)})`],
    ...msg.to.map((r): [string, string, string] => [
      "rcpt",
      "SMFIP_NORCPT",
      `mt.rcptto(conn, ${q(`<${r}>`)})`,
    ]),
    ...msg.headers.map(([n, v]): [string, string, string] => [
      "header",
      "SMFIP_NOHDRS",
      `mt.header(conn, ${q(n)}, ${q(v)})`,
    ]),
    ["eoh", "SMFIP_NOEOH", "mt.eoh(conn)"],
    ["body", "SMFIP_NOBODY", `mt.bodystring(conn, ${q(msg.body)})`],
  ];
  const script = `
local conn = mt.connect(${q(`inet:${port}@127.0.0.1`)}, 20, 0.25)
if conn == nil then error("cannot connect to the milter") end
-- True if the milter said continue; otherwise prints its reply.
local function step(name, err)
  if err ~= nil then error(name .. ": " .. err) end
  local r = mt.getreply(conn)
  if r == SMFIR_CONTINUE then return true end
  print("reply " .. string.char(r) .. " " .. name)
  return false
end
local function session()
  if not step("connect", mt.conninfo(conn, ${q(msg.clientName ?? "client.example")}, ${
    q(msg.clientIp ?? "192.0.2.1")
  })) then return end
${
    steps.map(([name, skip, call]) =>
      `  if not mt.test_option(conn, ${skip}) and not step(${q(name)}, ${call}) then return end`
    ).join("\n")
  }
  local err = mt.eom(conn)
  if err ~= nil then error("eom: " .. err) end
  print("reply " .. string.char(mt.getreply(conn)) .. " eom")
  for _, name in ipairs({${(opts.headers ?? []).map(q).join(", ")}}) do
    local n = 0
    while true do
      local v = mt.getheader(conn, name, n)
      if v == nil then break end
      local how = mt.eom_check(conn, MT_HDRINSERT, name, v) and "insert" or "add"
      local escaped = v:gsub("[%c\\\\]", function(c) return string.format("\\\\%03d", c:byte()) end)
      print("header " .. how .. " " .. name .. " " .. escaped)
      n = n + 1
    end
  end
end
session()
mt.disconnect(conn)
`;
  const out = await miltertest(script);
  const verdict: MilterVerdict = { reply: "", step: "", added: [] };
  for (const line of out.stdout.split("\n")) {
    const r = line.match(/^reply (.) (\w+)$/);
    if (r) [verdict.reply, verdict.step] = [REPLIES[r[1]] ?? r[1], r[2]];
    const h = line.match(/^header (add|insert) (\S+) (.*)$/);
    if (h) {
      const value = h[3].replace(/\\(\d{3})/g, (_, d) => String.fromCharCode(Number(d)));
      verdict.added.push({ name: h[2], value, insert: h[1] === "insert" });
    }
  }
  if (out.code !== 0 || verdict.reply === "") {
    throw new Error(`miltertest failed (exit ${out.code}):\n${out.stdout}${out.stderr}\n${script}`);
  }
  return verdict;
}

/** A Lua string literal: printable ASCII as is, the rest as decimal escapes. */
function luaString(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(b);
    out += b >= 0x20 && b < 0x7f && c !== '"' && c !== "\\" ? c : `\\${String(b).padStart(3, "0")}`;
  }
  return `"${out}"`;
}

/**
 * Runs a miltertest(8) Lua script, with `vars` as its global variables
 * (`-D name=value`, strings). Exit code 0 means the script ran to its end;
 * a script reports a failed check with `error("...")`.
 */
export async function miltertest(
  script: string,
  vars: Record<string, string | number> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = await Deno.makeTempFile({ prefix: "miltertest-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(file, script);
    const defines = Object.entries(vars).flatMap(([k, v]) => ["-D", `${k}=${v}`]);
    return await run(MILTERTEST, [...defines, "-s", file], { timeoutMs: 60_000 });
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** The text of the TXT record in an opendkim-genkey zone file stub, its strings joined. */
function txtFromZone(zone: string): string {
  const strings = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  if (strings.length === 0) throw new Error(`no TXT strings in:\n${zone}`);
  return strings.join("");
}

/** A daemon the test spawned, and what it wrote to stdout and stderr. */
interface Daemon {
  name: string;
  /** How long it may take to exit after SIGTERM before it gets SIGKILL. */
  stopGraceMs: number;
  proc: Deno.ChildProcess;
  output(): string;
  /** Its exit status once it has exited. */
  exited(): Deno.CommandStatus | undefined;
  /** Resolves when its output streams end. */
  drained: Promise<void>;
}

function spawnDaemon(cmd: string, args: string[], opts: { stopGraceMs?: number } = {}): Daemon {
  const proc = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) text += dec.decode(chunk, { stream: true });
  };
  let status: Deno.CommandStatus | undefined;
  proc.status.then((s) => status = s);
  return {
    name: cmd.replace(/.*\//, ""),
    stopGraceMs: opts.stopGraceMs ?? 10_000,
    proc,
    output: () => text,
    exited: () => status,
    drained: Promise.all([pump(proc.stdout), pump(proc.stderr)]).then(() => {}),
  };
}

/** A temporary folder the daemons' users can enter (mode 0755). */
async function makePeerDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.chmod(dir, 0o755);
  return dir;
}

async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([run("id", ["-u", user]), run("id", ["-g", user])]);
  if (u.code !== 0 || g.code !== 0) {
    throw new Error(`user ${user} is missing (run scripts/install-peers.sh): ${u.stderr}`);
  }
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** What the daemons printed and what their log files hold. */
async function peerLog(daemons: Daemon[], files: string[]): Promise<string> {
  const parts = daemons.map((d) => `--- ${d.name} output ---\n${d.output()}`);
  for (const f of files) {
    parts.push(`--- ${f} ---\n${await Deno.readTextFile(f).catch(() => "")}`);
  }
  return parts.join("\n");
}

/**
 * Waits until `target` (a port on 127.0.0.1, or a UNIX-domain socket
 * path) accepts a connection and `ready` holds; throws with the daemons'
 * output and log files if one of them exits first or START_MS passes.
 */
async function waitListening(
  what: string,
  target: number | string,
  daemons: Daemon[],
  logFiles: string[],
  ready: () => Promise<boolean> = () => Promise.resolve(true),
): Promise<void> {
  const end = Date.now() + START_MS;
  for (;;) {
    const dead = daemons.find((d) => d.exited());
    if (dead) {
      await Promise.race([dead.drained, sleep(1_000)]);
      throw new Error(
        `${dead.name} exited (code ${dead.exited()!.code}) before ${what} listened:\n` +
          (await peerLog(daemons, logFiles)),
      );
    }
    try {
      const conn = typeof target === "number"
        ? await Deno.connect({ hostname: "127.0.0.1", port: target })
        : await Deno.connect({ transport: "unix", path: target });
      conn.close();
      if (await ready()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) {
      const where = typeof target === "number" ? `127.0.0.1:${target}` : target;
      throw new Error(
        `${what} did not listen on ${where} within ${START_MS / 1000} s:\n` +
          (await peerLog(daemons, logFiles)),
      );
    }
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** Ends the daemons (SIGTERM, SIGKILL after their grace) and removes the folder. */
async function stopAll(dir: string, daemons: Daemon[]): Promise<void> {
  await Promise.all(daemons.map(async (d) => {
    if (!d.exited()) {
      // Its workers (rspamd's), in case it has to be killed and leaves them behind.
      const children = await childPids(d.proc.pid);
      signal(d.proc.pid, "SIGTERM");
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        signal(d.proc.pid, "SIGKILL");
      }, d.stopGraceMs);
      await d.proc.status;
      clearTimeout(timer);
      if (killed) { for (const pid of children) signal(pid, "SIGKILL"); }
    }
    await Promise.race([d.drained, sleep(1_000)]);
  }));
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** The child processes of `pid` (Linux's /proc/PID/task/PID/children). */
async function childPids(pid: number): Promise<number[]> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
  return text.split(/\s+/).filter((p) => p !== "").map(Number);
}

function peerHandle(
  dir: string,
  port: number,
  daemons: Daemon[],
  logFiles: string[],
): MilterPeer {
  let stopped: Promise<void> | undefined;
  return {
    dir,
    port,
    milter: `inet:127.0.0.1:${port}`,
    log: () => peerLog(daemons, logFiles),
    stop: () => stopped ??= stopAll(dir, daemons),
  };
}
