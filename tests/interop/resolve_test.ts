/**
 * Differential test of address rewriting and resolution: for each address
 * and one shared main.cf, the recipient, transport and next hop (or the
 * bounce) that a real Postfix chooses must equal Postwarden's.
 *
 * The oracle is Postfix 3.7 started as root in a temporary folder with its
 * own queue_directory, data_directory, maillog_file and syslog_name, and a
 * master.cf without smtpd whose delivery transports (local, virtual, smtp,
 * relay and the custom ones of transport_maps) are all pipe(8) services
 * that append `transport nexthop recipient queue_id` to a file. Each
 * address is submitted as one message with that instance's sendmail (`-C
 * dir -f sender`) and a unique Message-ID, which the log ties to the queue
 * id; bounces (virtual alias domains, relocated users, `error:` entries,
 * bad syntax) are read from the log's `status=bounced (...)` lines.
 *
 * Postwarden's side is {@link ourOutcome}: the address parsed by the one
 * strict parser (lib/address), rewritten in the "local" context and
 * resolved (lib/resolve), as cleanup and qmgr do. Cleanup's table-driven
 * rewriting (canonical_maps, virtual_alias_maps) is not connected to it
 * yet: the cases that need it are listed with `cleanup: true` and are
 * compared only when {@link OUR_SIDE_HAS_CLEANUP} says so; until then they
 * are reported as not compared (the oracle still runs them).
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { parseMailPath } from "../../lib/address/mod.ts";
import { type Config, makeConfig } from "../../lib/config/mod.ts";
import { deliveryRoute, Resolver, rewriteAddress, rewriteContext } from "../../lib/resolve/mod.ts";
import { errorText } from "../../daemons/error/error.ts";
import { AddressRewriter } from "../../daemons/cleanup/addresses.ts";
import { CleanupTables } from "../../daemons/cleanup/tables.ts";
import { mapsOpener } from "../../lib/service/mod.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import { comparableReplies, smtpReplies } from "../helpers/instance.ts";
import { POSTFIX, POSTFIX_SENDMAIL, processesIn } from "../helpers/postfix.ts";

/** What happened to one recipient. */
export type Outcome =
  | { transport: string; nexthop: string; recipient: string }
  | { bounced: string; reason: string };

/** One address to compare; `sender` defaults to tester@sender.example. */
interface Case {
  address: string;
  sender?: string;
  /** The oracle rewrites it with canonical_maps or virtual_alias_maps. */
  cleanup?: boolean;
}

/** cleanup's canonical and virtual alias rewriting is part of {@link ourOutcome}. */
export const OUR_SIDE_HAS_CLEANUP = true;

/** cleanup's tables for a configuration, opened once. */
const cleanupTables = new WeakMap<Config, Promise<CleanupTables>>();

/**
 * Postwarden's outcome for one address as sendmail would submit it: parsed,
 * rewritten in the local context, resolved with the sender, and where qmgr
 * sends it ({@link deliveryRoute}; the error agent bounces with the text
 * of its next hop). This is the seam where cleanup's canonical and
 * virtual alias expansion go (between the rewrite and the resolve).
 */
export async function ourOutcome(
  config: Config,
  resolver: Resolver,
  address: string,
  sender: string,
): Promise<Outcome[]> {
  const internal = parseMailPath(address.startsWith("<") ? address : `<${address}>`).address;
  // cleanup: rewrite local, canonical maps, virtual alias expansion.
  let tables = cleanupTables.get(config);
  if (!tables) cleanupTables.set(config, tables = CleanupTables.open(config, mapsOpener(() => {})));
  const local = rewriteContext(config);
  const rw = new AddressRewriter(await tables, (a) => rewriteAddress(a, local), () => {});
  const out: Outcome[] = [];
  for (const rcpt of await rw.expand(await rw.rewrite(internal, "envelopeRecipient"))) {
    // qmgr: resolve with the sender, and route.
    const r = await resolver.resolve(rcpt, { sender });
    const { transport, nexthop } = deliveryRoute(r);
    if (transport === "error") {
      const { dsn, reason } = errorText(nexthop, "5.0.0", "mail is undeliverable");
      out.push({ bounced: dsn, reason });
    } else out.push({ transport, nexthop, recipient: r.recipient });
  }
  return out;
}

// --- The shared configurations ---

/** Transports the oracle runs as recording pipe(8) services. */
const PIPES = ["local", "virtual", "smtp", "relay", "custom", "special", "slow", "bulk", "wild"];

const MAIN_A = `
compatibility_level = 3.6
myhostname = mx.example.org
mydomain = example.org
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain
inet_interfaces = 127.0.0.1
proxy_interfaces = 192.0.2.25
recipient_delimiter = +
virtual_alias_domains = valias.example
virtual_alias_maps = inline:{ known@valias.example=alice@example.org }
canonical_maps = inline:{ oldname@example.org=newname@example.org }
virtual_mailbox_domains = vmbox.example, inline:{ vmtable.example=x }
relay_domains = relay.example, .relaysub.example, inline:{ tablerelay.example=x }
relay_transport = relay
relayhost = [gw.example.net]:2525
transport_maps = inline:{ exact@special.example=custom:[10.1.1.1],
  user@ext.example=custom:ext-hop.example, special.example=special:,
  .sub.example=slow:, sub.example=slow:[10.3.3.3]:2526, parentonly.example=:[10.2.2.2],
  { err.example=error:5.7.1 no mail here }, errnohop.example=error:, localhost=custom:,
  vmbox.example=:[10.4.4.4], relay.example=relay: }
relocated_maps = inline:{ moved@example.org=new@else.example, @oldco.example=contact@newco.example }
sender_dependent_relayhost_maps = inline:{ vip@sender.example=[vip-relay.example],
  @bulk.example=bulk-relay.example:26, dunno@sender.example=DUNNO }
sender_dependent_default_transport_maps = inline:{ @bulk.example=bulk }
`;

const CASES_A: Case[] = [
  // Local names, with and without domain, extensions.
  { address: "alice" },
  { address: "alice@example.org" },
  { address: "Alice@EXAMPLE.ORG" },
  { address: "alice@mx.example.org" },
  { address: "alice@mx.example.org." },
  { address: "alice@localhost.example.org" },
  { address: "alice@localhost" },
  { address: "alice+box@example.org" },
  { address: "alice+box" },
  { address: "postmaster" },
  { address: "postmaster@example.org" },
  { address: "MAILER-DAEMON" },
  { address: "bob.smith@example.org" },
  { address: "alice@sub.example.org" },
  // Address literals of inet_interfaces and proxy_interfaces, and others.
  { address: "alice@[127.0.0.1]" },
  { address: "alice@[192.0.2.25]" },
  { address: "alice@[192.0.2.26]" },
  { address: "alice@[10.0.0.1]" },
  { address: "alice@[IPv6:::1]" },
  { address: "alice@[300.1.1.1]" },
  // Bang paths.
  { address: "remote.example!bob" },
  { address: "example.org!bob" },
  { address: "localhost!bob" },
  { address: "a.example!b.example!bob" },
  { address: "remote.example!bob@example.org" },
  { address: "remote.example!bob@localhost" },
  { address: "remote.example!bob@relay.example" },
  { address: "example.org!remote.example!bob" },
  // Percent hacks.
  { address: "bob%remote.example" },
  { address: "bob%remote.example@example.org" },
  { address: "bob%remote.example@localhost" },
  { address: "bob%example.org@example.org" },
  { address: "bob%a.example%b.example@example.org" },
  { address: "bob%remote.example@relay.example" },
  { address: "bob%relay.example@example.org" },
  { address: "bob%[127.0.0.1]@example.org" },
  // Quoted local parts with "@", "%", "!" and specials.
  { address: '"bob@remote.example"@example.org' },
  { address: '"bob@remote.example"@remote2.example' },
  { address: '"bob%remote.example"@example.org' },
  { address: '"bob!x"@example.org' },
  { address: '"remote.example!bob"@example.org' },
  { address: '"john doe"@example.org' },
  { address: '"john doe"@remote.example' },
  { address: '"john@doe"@localhost' },
  { address: '"a b%remote.example"@example.org' },
  { address: '"bob@relay.example"@example.org' },
  // Source routes.
  { address: "@relay.one:bob@example.org" },
  { address: "<@relay.one,@relay.two:bob@remote.example>" },
  { address: "@relay.one:bob@relay.example" },
  // Virtual alias domains (no alias: bounces), virtual mailbox domains.
  { address: "nobody@valias.example" },
  { address: "nobody+ext@valias.example" },
  { address: "known@valias.example", cleanup: true },
  { address: "box@vmbox.example" },
  { address: "box@vmtable.example" },
  { address: "box@sub.vmbox.example" },
  // Relay domains: names, parent-style subdomains, ".domain", tables.
  { address: "r@relay.example" },
  { address: "r@deep.relay.example" },
  { address: "r@relaysub.example" },
  { address: "r@x.relaysub.example" },
  { address: "r@tablerelay.example" },
  { address: "r@sub.tablerelay.example" },
  // Default class: relayhost with brackets and port.
  { address: "user@remote.example" },
  { address: "USER@Remote.Example" },
  { address: "user@remote.example." },
  { address: "user+tag@remote.example" },
  { address: "user@nodots" },
  { address: "user@a-b.example" },
  // transport_maps: exact, extension, domain, parent, ".parent", empty fields, error.
  { address: "exact@special.example" },
  { address: "exact+ext@special.example" },
  { address: "other@special.example" },
  { address: "user@ext.example" },
  { address: "user+foo@ext.example" },
  { address: "other@ext.example" },
  { address: "x@sub.example" },
  { address: "x@a.sub.example" },
  { address: "x@a.b.sub.example" },
  { address: "x@parentonly.example" },
  { address: "x@child.parentonly.example" },
  { address: "x@err.example" },
  { address: "x@errnohop.example" },
  { address: "bob@localhost" },
  { address: "box@vmbox.example" },
  { address: "r@relay.example", sender: "vip@sender.example" },
  // relocated_maps.
  { address: "moved@example.org" },
  { address: "moved+ext@example.org" },
  { address: "moved" },
  { address: "anyone@oldco.example" },
  // Sender-dependent relayhost and default transport.
  { address: "user@remote.example", sender: "vip@sender.example" },
  { address: "user@remote.example", sender: "vip+tag@sender.example" },
  { address: "user@remote.example", sender: "someone@bulk.example" },
  { address: "user@remote.example", sender: "dunno@sender.example" },
  { address: "r@relay.example", sender: "someone@bulk.example" },
  { address: "alice@example.org", sender: "vip@sender.example" },
  { address: "box@vmbox.example", sender: "someone@bulk.example" },
  { address: "x@sub.example", sender: "vip@sender.example" },
  // Canonical mapping (cleanup).
  { address: "oldname@example.org", cleanup: true },
  { address: "oldname", cleanup: true },
  // Minus and odd forms.
  { address: "-dash@example.org" },
  { address: "-dash@remote.example" },
  { address: "a..b@example.org" },
  { address: "user@123.45.67.89" },
];

const MAIN_B = `
compatibility_level = 3.6
myhostname = mx.example.org
mydomain = example.org
mydestination = $myhostname, localhost
inet_interfaces = 127.0.0.1
relay_domains = relay.example
relayhost = gw.example.net
append_dot_mydomain = yes
allow_percent_hack = no
swap_bangpath = no
resolve_numeric_domain = yes
show_user_unknown_table_name = no
virtual_alias_domains = valias.example
parent_domain_matches_subdomains = transport_maps
transport_maps = inline:{ *=wild, keep.example=:, smtphop.example=smtp:[10.9.9.9],
  parent.example=custom: }
sender_dependent_relayhost_maps = inline:{ <>=[null-relay.example] }
`;

const CASES_B: Case[] = [
  { address: "alice" },
  { address: "alice@nodots." },
  { address: "alice@mx.example.org" },
  { address: "alice@localhost" },
  { address: "alice@nodots" },
  { address: "alice@remote.example" },
  { address: "alice@keep.example" },
  { address: "alice@smtphop.example" },
  { address: "alice@parent.example" },
  { address: "alice@child.parent.example" },
  { address: "alice@relay.example" },
  { address: "alice@sub.relay.example" },
  { address: "nobody@valias.example" },
  { address: "bob%remote.example@localhost" },
  { address: "bob%remote.example" },
  { address: "remote.example!bob" },
  { address: "remote.example!bob@localhost" },
  { address: '"bob@remote.example"@localhost' },
  { address: '"bob%remote.example"@localhost' },
  { address: "user@192.0.2.7" },
  { address: "user@127.0.0.1" },
  { address: "user@[127.0.0.1]" },
  { address: "alice@remote.example", sender: "" },
  { address: "alice@relay.example", sender: "" },
  { address: "alice@localhost", sender: "" },
  { address: "alice@keep.example", sender: "" },
];

// --- The oracle ---

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the cases through a real Postfix with mainCf; outcomes by case index. */
async function oracle(mainCf: string, cases: Case[]): Promise<Map<number, Outcome[]>> {
  const dir = await Deno.makeTempDir({ prefix: "postfix-resolve-" });
  const queue = `${dir}/queue`;
  const records = `${dir}/rec/records`;
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(queue);
  await Deno.mkdir(`${dir}/data`);
  await Deno.mkdir(`${dir}/rec`);
  await Deno.chmod(`${dir}/rec`, 0o777);
  await run("chown", ["postfix", `${dir}/data`]);
  const script = `${dir}/record.sh`;
  await Deno.writeTextFile(
    script,
    `#!/bin/sh\nprintf '%s\\t%s\\t%s\\t%s\\n' "$1" "$2" "$3" "$4" >> ${records}\n`,
  );
  await Deno.chmod(script, 0o755);
  const instance = [
    `queue_directory = ${queue}`,
    `data_directory = ${dir}/data`,
    "mail_owner = postfix",
    "setgid_group = postdrop",
    "inet_protocols = ipv4",
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    `syslog_name = postfix-resolve-${Deno.pid}`,
    "alias_maps =",
    "alias_database =",
    "biff = no",
    "queue_run_delay = 1s",
    "minimal_backoff_time = 1s",
    "maximal_backoff_time = 2s",
    // Each address is its own message: deliver them in parallel.
    "default_destination_concurrency_limit = 50",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/main.cf`, `${mainCf}\n${instance}\n`);
  const svc = (name: string, priv: string, cmd: string, args = "", limit = "-") =>
    `${name}\tunix\t-\t${priv}\tn\t-\t${limit}\t${cmd}${args ? " " + args : ""}`;
  const master = [
    "pickup\tunix\tn\t-\tn\t1\t1\tpickup",
    "cleanup\tunix\tn\t-\tn\t-\t0\tcleanup",
    "qmgr\tunix\tn\t-\tn\t300\t1\tqmgr",
    svc("rewrite", "-", "trivial-rewrite"),
    svc("bounce", "-", "bounce", "", "0"),
    svc("defer", "-", "bounce", "", "0"),
    svc("trace", "-", "bounce", "", "0"),
    svc("verify", "-", "verify", "", "1"),
    svc("proxymap", "-", "proxymap"),
    svc("error", "-", "error"),
    svc("retry", "-", "error"),
    svc("discard", "-", "discard"),
    "showq\tunix\tn\t-\tn\t-\t-\tshowq",
    "flush\tunix\tn\t-\tn\t1000?\t0\tflush",
    "postlog\tunix-dgram\tn\t-\tn\t-\t1\tpostlogd",
    ...PIPES.map((t) =>
      svc(t, "n", "pipe", `user=nobody argv=${script} ${t} \${nexthop} \${recipient} \${queue_id}`)
    ),
  ].join("\n");
  await Deno.writeTextFile(`${dir}/master.cf`, master + "\n");
  const stop = async () => {
    await run(POSTFIX, ["-c", dir, "stop"]);
    const end = Date.now() + 10_000;
    let left = await processesIn(queue);
    while (left.length && Date.now() < end) {
      await sleep(100);
      left = await processesIn(queue);
    }
    for (const pid of left) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  try {
    const started = await run(POSTFIX, ["-c", dir, "start"]);
    if (started.code !== 0) throw new Error(`postfix start: ${started.stdout}${started.stderr}`);
    await Promise.all(cases.map(async (c, i) => {
      const sender = c.sender ?? "tester@sender.example";
      const msg = `Message-ID: <case-${i}@resolve.test>\nSubject: case ${i}\n\nbody\n`;
      const r = await run(POSTFIX_SENDMAIL, ["-C", dir, "-f", sender, "--", c.address], {
        stdin: msg,
      });
      if (r.code !== 0) throw new Error(`sendmail ${c.address}: ${r.stdout}${r.stderr}`);
    }));
    const end = Date.now() + 30_000;
    let out = new Map<number, Outcome[]>();
    while (Date.now() < end) {
      out = await collect(dir, records);
      if (cases.every((_, i) => out.has(i))) break;
      await sleep(250);
    }
    const missing = cases.filter((_, i) => !out.has(i)).map((c) => c.address);
    if (missing.length) {
      const log = await Deno.readTextFile(`${dir}/maillog`).catch(() => "");
      console.warn(
        `no outcome from Postfix within 30s for ${missing.join(", ")}; its warnings:\n` +
          log.split("\n").filter((l) => /warning|fatal|error|deferred/.test(l))
            .filter((l) => !/not owned by root|group or other writable/.test(l)).slice(-20)
            .join("\n"),
      );
    }
    return out;
  } finally {
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Outcomes so far: pipe records and bounce log lines, tied to cases by Message-ID. */
async function collect(dir: string, records: string): Promise<Map<number, Outcome[]>> {
  const log = await Deno.readTextFile(`${dir}/maillog`).catch(() => "");
  const caseOf = new Map<string, number>();
  for (const m of log.matchAll(/ ([0-9A-F]+): message-id=<case-(\d+)@resolve\.test>/g)) {
    caseOf.set(m[1], Number(m[2]));
  }
  const out = new Map<number, Outcome[]>();
  const add = (qid: string, o: Outcome) => {
    const i = caseOf.get(qid);
    if (i === undefined) return; // a bounce message, not a case
    out.set(i, [...(out.get(i) ?? []), o]);
  };
  const text = await Deno.readTextFile(records).catch(() => "");
  for (const line of text.split("\n")) {
    const [transport, nexthop, recipient, qid] = line.split("\t");
    if (qid !== undefined) add(qid, { transport, nexthop, recipient });
  }
  const bounce =
    / ([0-9A-F]+): to=<.*?>, (?:orig_to=<.*?>, )?relay=.*?, dsn=(\S+), status=bounced \((.*)\)$/;
  for (const line of log.split("\n")) {
    const m = bounce.exec(line);
    if (m) add(m[1], { bounced: m[2], reason: m[3] });
  }
  return out;
}

// --- The test ---

async function compare(
  name: string,
  mainCf: string,
  cases: Case[],
  t: Deno.TestContext,
): Promise<void> {
  const config = makeConfig("/nonexistent", mainCf);
  const resolver = Resolver.fromConfig(config);
  try {
    const theirs = await oracle(mainCf, cases);
    const mismatches: string[] = [];
    let compared = 0;
    const notCompared: string[] = [];
    for (const [i, c] of cases.entries()) {
      if (c.cleanup && !OUR_SIDE_HAS_CLEANUP) {
        notCompared.push(c.address);
        continue;
      }
      const sender = c.sender ?? "tester@sender.example";
      let ours: Outcome[] | string;
      try {
        ours = await ourOutcome(config, resolver, c.address, sender);
      } catch (e) {
        ours = `error: ${(e as Error).message}`;
      }
      compared++;
      const them = theirs.get(i);
      if (JSON.stringify(ours) !== JSON.stringify(them)) {
        mismatches.push(
          `${c.address} (from <${sender}>):\n  Postfix:    ${JSON.stringify(them)}\n` +
            `  Postwarden: ${JSON.stringify(ours)}`,
        );
      }
    }
    console.log(
      `${name}: ${compared} addresses compared with Postfix, ${mismatches.length} differ` +
        (notCompared.length
          ? `; not compared (cleanup's canonical/virtual rewriting is not connected): ${
            notCompared.join(", ")
          }`
          : ""),
    );
    await t.step(`${name}: Postwarden resolves like Postfix`, () => {
      assertEquals(mismatches, []);
    });
  } finally {
    await resolver.close();
  }
}

/**
 * `n` addresses built from routing characters, quotes, and domains of each
 * class, reproducible from `seed` (RESOLVE_RANDOM=n RESOLVE_SEED=s adds
 * them to main.cf A's cases).
 */
export function randomCases(n: number, seed: number): Case[] {
  let x = seed >>> 0 || 1;
  const next = (k: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % k;
  };
  const pick = <T>(a: T[]) => a[next(a.length)];
  const words = [
    "u",
    "bob",
    "a.b",
    "moved",
    "exact",
    "user",
    "postmaster",
    "x+y",
    "-m",
    "a b",
    "U",
  ];
  const domains = [
    "example.org",
    "localhost",
    "mx.example.org",
    "remote.example",
    "relay.example",
    "x.relay.example",
    "valias.example",
    "vmbox.example",
    "special.example",
    "a.sub.example",
    "[127.0.0.1]",
    "[192.0.2.25]",
    "[10.9.9.9]",
    "oldco.example",
    "nodots",
    "err.example",
  ];
  const out: Case[] = [];
  while (out.length < n) {
    let local = pick(words);
    for (let k = next(3); k > 0; k--) {
      local = pick([
        () => `${local}%${pick(domains)}`,
        () => `${pick(domains)}!${local}`,
        () => `${local}@${pick(domains)}`,
      ])();
    }
    const quoted = local.includes("@") || local.includes(" ") || next(4) === 0;
    const lp = quoted ? `"${local}"` : local;
    const route = next(8) === 0 ? `@${pick(domains.filter((d) => !d.startsWith("[")))}:` : "";
    const bare = next(5) === 0 && !quoted;
    const address = route
      ? `<${route}${lp}@${pick(domains)}>`
      : bare
      ? lp
      : `${lp}@${pick(domains)}`;
    const sender = pick(["tester@sender.example", "vip@sender.example", "a@bulk.example"]);
    out.push({ address, sender });
  }
  return out;
}

Deno.test("resolution matches Postfix's trivial-rewrite", async (t) => {
  if (!havePeer(POSTFIX) || !havePeer(POSTFIX_SENDMAIL) || !haveRoot("a Postfix oracle")) return;
  const extra = Number(Deno.env.get("RESOLVE_RANDOM") ?? "0");
  const seed = Number(Deno.env.get("RESOLVE_SEED") ?? "1");
  await compare("main.cf A", MAIN_A, [...CASES_A, ...randomCases(extra, seed)], t);
  await compare("main.cf B", MAIN_B, CASES_B, t);
});

// --- Routed recipients from an outside client (acceptance: relay denied, nothing queued) ---

/** RCPT TO arguments that try to relay through a domain of ours. */
const ROUTED_RCPTS = [
  '<"r%outside.example">',
  "<outside.example!r>",
  "<r%outside.example>",
  "<r%outside.example@localhost>",
  "<outside.example!r@localhost>",
  '<"r@outside.example"@localhost>',
  '<"r%outside.example"@localhost>',
  '<"outside.example!r"@localhost>',
  "<@localhost:r@outside.example>",
  "<r@outside.example@localhost>",
  "<r@outside.example>",
  "<r%outside.example@[127.0.0.1]>",
  "<x@[192.0.2.1]@localhost>",
  "<r%outside.example%localhost@localhost>",
];
/** Recipients of ours, routed or not, that both accept. */
const OUR_RCPTS = [
  "<r%localhost@localhost>",
  "<localhost!r@localhost>",
  "<user@localhost>",
  "<user@[127.0.0.1]>",
  "<user>",
];

/** The relevant settings, for both servers; mynetworks leaves out loopback: the test client is "outside". */
const OUTSIDE = [
  "myhostname = mx.test.example",
  "mynetworks = 192.0.2.0/24",
  "local_recipient_maps =",
  // Many rejections in one session: no tarpit, no disconnect.
  "smtpd_error_sleep_time = 0",
  "smtpd_soft_error_limit = 10000",
  "smtpd_hard_error_limit = 10000",
];
const EMBEDDED_RELAY = [
  // conf/main.cf's relay settings.
  "mydestination = $myhostname, localhost.$mydomain, localhost",
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
  "smtpd_recipient_restrictions =",
];
/** Postfix's defaults (compatibility_level 3.6): defer_unauth_destination. */
const DEFAULT_RELAY = [
  "mydestination = $myhostname, localhost.$mydomain, localhost",
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, " +
  "defer_unauth_destination",
];

Deno.test({
  name: "routed recipients from an outside client get Postfix's replies, and nothing is queued",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance } = await import("../helpers/instance.ts");
    // RELAY_RANDOM=n (RELAY_SEED=s) adds n random recipients to the comparison.
    const random = randomCases(
      Number(Deno.env.get("RELAY_RANDOM") ?? "0"),
      Number(Deno.env.get("RELAY_SEED") ?? "1"),
    ).map((c) => c.address.startsWith("<") ? c.address : `<${c.address}>`);
    const commands = [
      "EHLO client.example",
      // Senders the resolver calls bad syntax.
      "MAIL FROM:<-x@client.example>",
      "MAIL FROM:<a@123.45.67.89>",
      "MAIL FROM:<a@[300.1.1.1]>",
      "MAIL FROM:<someone@client.example>",
      ...[...ROUTED_RCPTS, ...OUR_RCPTS, ...random].map((r) => `RCPT TO:${r}`),
      "QUIT",
    ];
    for (const [name, relay] of [["conf/main.cf", EMBEDDED_RELAY], ["defaults", DEFAULT_RELAY]]) {
      const mainCf = [...OUTSIDE, ...relay].join("\n");
      const pf = await startPostfix({ mainCf, myhostname: "mx.test.example" });
      let theirs: string[];
      try {
        theirs = await smtpReplies(pf.port, commands);
      } finally {
        await pf.stop();
      }
      const pw = await startInstance({ mainCf });
      let ours: string[];
      let queued: string[] = [];
      try {
        ours = await smtpReplies(pw.port, commands);
        for (const q of ["incoming", "active", "deferred", "hold", "maildrop"]) {
          for await (const e of Deno.readDir(`${pw.queue}/${q}`)) queued.push(`${q}/${e.name}`);
        }
      } finally {
        await pw.stop();
      }
      await t.step(`${name}: same replies as Postfix`, () => {
        assertEquals(comparableReplies(commands, ours), comparableReplies(commands, theirs));
      });
      await t.step(`${name}: every routed recipient is refused, nothing is queued`, () => {
        // Replies are offset by one from commands (the greeting comes first).
        const first = commands.indexOf(`RCPT TO:${ROUTED_RCPTS[0]}`) + 1;
        const refused = ours.slice(first, first + ROUTED_RCPTS.length);
        assertEquals(refused.filter((l) => !/^(554|454) .*Relay access denied$/.test(l)), []);
        queued = queued.filter((f) => f !== "maildrop/.keep");
        assertEquals(queued, []);
      });
    }
  },
});

/** Recipients of each address class, known and unknown (recipient validation at RCPT). */
const VALIDATED_RCPTS = [
  "<nosuchuser@localhost>",
  "<root@localhost>",
  "<ROOT@LOCALHOST>",
  "<postmaster@localhost>",
  "<mailer-daemon@localhost>",
  "<staff@localhost>",
  "<nosuchuser@mx.test.example>",
  "<nosuchuser>",
  '<"no such"@localhost>',
  "<nobody-here@[127.0.0.1]>",
  "<known@valias.example>",
  "<unknown@valias.example>",
  "<known@relay.example>",
  "<unknown@relay.example>",
  "<someone@outside.example>",
  "<moved@localhost>",
  "<x@closed.example>",
];

Deno.test({
  name: "unknown recipients get Postfix's replies at RCPT (User unknown in ... table)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const commands = [
      "EHLO client.example",
      "MAIL FROM:<someone@client.example>",
      ...VALIDATED_RCPTS.map((r) => `RCPT TO:${r}`),
      "QUIT",
    ];
    for (
      const [name, extra] of [
        // Postfix's default local_recipient_maps: our instance runs proxymap for it.
        ["Postfix's default tables", [
          "local_recipient_maps = proxy:unix:passwd.byname $alias_maps",
        ]],
        ["conf/main.cf's tables, table names hidden", [
          "local_recipient_maps = unix:passwd.byname $alias_maps",
          "show_user_unknown_table_name = no",
          "unknown_local_recipient_reject_code = 450",
        ]],
      ] as const
    ) {
      const mainCf = [
        ...OUTSIDE.filter((l) => !l.startsWith("local_recipient_maps")),
        ...EMBEDDED_RELAY,
        "alias_maps = inline:{ postmaster=root, staff=root }",
        "virtual_alias_domains = valias.example",
        "virtual_alias_maps = inline:{ known@valias.example=root@localhost }",
        "relay_domains = relay.example",
        "relay_recipient_maps = inline:{ known@relay.example=ok }",
        "relocated_maps = inline:{ moved@localhost=new@else.example }",
        "transport_maps = inline:{ {closed.example=error:5.7.1 no mail here} }",
        ...extra,
      ].join("\n");
      const { theirs, ours } = await onBoth(mainCf, (server) => smtpReplies(server.port, commands));
      await t.step(`${name}: same replies as Postfix`, () => {
        assertEquals(comparableReplies(commands, ours), comparableReplies(commands, theirs));
      });
      await t.step(`${name}: the unknown ones are refused`, () => {
        const at = (r: string) => ours[commands.indexOf(`RCPT TO:${r}`) + 1];
        assertMatch(at("<nosuchuser@localhost>"), /^(450|550) .*User unknown/);
        assertMatch(at("<unknown@valias.example>"), /^550 .*User unknown/);
        assertMatch(at("<unknown@relay.example>"), /^550 .*User unknown/);
        assertMatch(at("<root@localhost>"), /^250 /);
      });
    }
  },
});
