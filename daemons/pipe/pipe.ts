/**
 * The pipe delivery function: what pipe(8) does with one delivery
 * request. It checks the request against the service's attributes
 * (lib/pipe: flags, size=, user=), expands argv= (macros.ts) into one
 * command line for all the request's recipients, runs the program once
 * (command.ts) with the message on its standard input (lib/deliver
 * mail_copy.ts), and
 * gives every recipient the command's outcome, logged with
 * `relay=SERVICE` as Postfix does.
 *
 * Before running anything, as pipe(8):
 * - D or O with more than one recipient defers (4.3.5, "mail system
 *   configuration error") and warns that `SERVICE_destination_recipient_limit
 *   = 1` is needed;
 * - a message over size= bounces (5.2.3 "message too large");
 * - with D, a message that already has `Delivered-To: RECIPIENT` bounces
 *   (5.4.6 "mail forwarding loop for RECIPIENT");
 * - an argument holding a NUL byte (it cannot be passed to a program)
 *   bounces (5.3.0).
 *
 * Address verification (DeliveryRequest.verify): all of the above is
 * checked, then nothing is run and every recipient gets "delivers to
 * command: PROGRAM", the program as argv= names it (status=deliverable),
 * as Postfix's pipe(8) says. (Postfix answers before its Delivered-To
 * and argument checks; this agent reports what a delivery would meet.)
 *
 * Privileges: the command runs as user= (uid and primary group, or
 * user=name:group's group), which must not be root, group 0 or the mail
 * owner, exactly as pipe(8) refuses. That takes root: when master runs as
 * root it runs this daemon as root for that reason alone (the sandbox
 * still limits it to the queue's active/ folder, /etc/passwd, /etc/group
 * and the one program). When Postwarden runs as an ordinary user, only a
 * user= naming that same user can work; any other defers the mail with a
 * reason saying so.
 *
 * Environment of the command: PATH=/usr/bin:/bin and the
 * export_environment variables this process has (Postfix's clean_env).
 * Working directory: directory=, else queue_directory.
 *
 * Parameters: SERVICE_time_limit (command_time_limit, 1000s),
 * export_environment (TZ MAIL_CONFIG LANG), recipient_delimiter (for
 * ${user} and ${extension}), mail_owner, queue_directory.
 * header_size_limit bounds the Delivered-To search.
 */
import { argvText, capturing } from "../../lib/deliver/capture.ts";
import type { Config } from "../../lib/config/mod.ts";
import {
  deliveryDelays,
  type DeliveryRecipient,
  type DeliveryRequest,
  logStatus,
  type RecipientStatus,
} from "../../lib/deliver/mod.ts";
import { splitOrcpt } from "../../lib/dsn/mod.ts";
import { deliveredTo, isDeliveredTo } from "../../lib/deliver/delivered.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { type PipeAttributes, programCandidates } from "../../lib/pipe/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import {
  commandOutcome,
  type CommandResult,
  type CommandSpec,
  runCommand,
} from "../../lib/deliver/command.ts";
import { envelopeLines, LineCopier } from "../../lib/deliver/mail_copy.ts";
import { expandArgv } from "./macros.ts";

/** The account a service's commands run as, or why there is none. */
export type PipeIdentity =
  | { uid: number; gid: number; setIds: boolean }
  | { problem: string };

/** Options for {@link deliverPipe}; tests inject the clock and the runner. */
export interface PipeOptions {
  attrs: PipeAttributes;
  identity: PipeIdentity;
  /** Clock in ms. @default Date.now */
  now?: () => number;
  /** Runs a command. @default runCommand */
  run?: (spec: CommandSpec) => Promise<CommandResult>;
  /** The daemon's environment, for export_environment. @default Deno.env.get, where permitted */
  getenv?: (name: string) => string | undefined;
}

/**
 * The uid and gid user= names, checked as pipe(8) checks them. `self` is
 * this process's uid: as root the ids are set on the command; otherwise
 * only this process's own user can run it.
 */
export function pipeIdentity(
  attrs: PipeAttributes,
  config: Config,
  files: { passwd: PasswdFile; groups: () => string },
  self: number,
): PipeIdentity {
  const pw = files.passwd.byName(attrs.user);
  if (!pw) return { problem: `unknown username: ${attrs.user}` };
  let gid = pw.gid;
  if (attrs.group !== null) {
    const g = groupId(files.groups(), attrs.group);
    if (g === null) return { problem: `unknown group: ${attrs.group}` };
    gid = g;
  }
  if (pw.uid === 0) return { problem: "user= command-line attribute specifies root privileges" };
  if (gid === 0) {
    return { problem: "user= command-line attribute specifies privileged group id 0" };
  }
  const owner = files.passwd.byName(config.str("mail_owner"));
  if (self === 0 && owner && pw.uid === owner.uid) {
    return {
      problem: `user= command-line attribute specifies mail system owner ${owner.name}`,
    };
  }
  if (self === 0 && owner && gid === owner.gid) {
    return {
      problem: `user= command-line attribute specifies mail system owner ${owner.name} ` +
        `group id ${gid}`,
    };
  }
  if (self === 0) return { uid: pw.uid, gid, setIds: true };
  if (pw.uid !== self) {
    return {
      problem: `user=${attrs.user}: commands can run as another user only when master runs ` +
        `as root (Postwarden runs as uid ${self})`,
    };
  }
  return { uid: pw.uid, gid, setIds: false };
}

/** The gid of a group in /etc/group text, or null. */
export function groupId(text: string, name: string): number | null {
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] === name && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return null;
}

/** Delivers a request through the service's command; one status per recipient. */
export async function deliverPipe(
  req: DeliveryRequest,
  file: QueueFile,
  ctx: ServiceContext,
  opts: PipeOptions,
): Promise<RecipientStatus[]> {
  const now = opts.now ?? Date.now;
  const start = now();
  const service = ctx.args.service;
  const attrs = opts.attrs;
  const all = (st: Omit<RecipientStatus, "index" | "relay">): RecipientStatus[] => {
    const end = now();
    return req.recipients.map((r) => {
      const full: RecipientStatus = {
        index: r.index,
        relay: service,
        ...st,
        ...(st.status === "sent" ? { action: attrs.flags.has("X") ? "delivered" : "relayed" } : {}),
      };
      logStatus(ctx, req, r, full, deliveryDelays(req, start, start, end));
      return full;
    });
  };
  const configError = (warning: string) => {
    ctx.log.warn(warning);
    return all({ status: "deferred", dsn: "4.3.5", reason: "mail system configuration error" });
  };

  // A test instance (capture) cannot know the real server's users: it runs nothing anyway.
  const capture = capturing(ctx.config);
  const identity = "problem" in opts.identity ? null : opts.identity;
  if ("problem" in opts.identity && !capture) {
    return configError(`${service}: ${opts.identity.problem}`);
  }
  for (const f of ["D", "O"]) {
    if (attrs.flags.has(f) && req.recipients.length > 1) {
      return configError(`pipe flag \`${f}' requires ${service}_destination_recipient_limit = 1`);
    }
  }
  const size = file.contentSize;
  if (attrs.sizeLimit > 0 && size > attrs.sizeLimit) {
    return all({ status: "bounced", dsn: "5.2.3", reason: "message too large" });
  }
  const first = req.recipients[0];
  if (attrs.flags.has("D")) {
    const delivered = await deliveredTo(file, ctx.config.size("header_size_limit"));
    if (isDeliveredTo(delivered, first.address)) {
      return all({
        status: "bounced",
        dsn: "5.4.6",
        reason: `mail forwarding loop for ${first.address}`,
      });
    }
  }

  const sender = req.sender === "" ? attrs.nullSender : req.sender;
  const a = file.envelope.attrs ?? {};
  const argv = expandArgv(attrs.argv, {
    sender,
    nexthop: req.nexthop,
    size,
    queueId: req.queueId,
    clientAddress: a.clientAddr ?? "",
    clientHelo: a.helo ?? "",
    clientHostname: a.clientName ?? "",
    clientProtocol: a.protocol ?? "",
    recipients: req.recipients.map((r) => ({ address: r.address, original: original(r) })),
    delimiters: ctx.config.str("recipient_delimiter"),
    flags: attrs.flags,
  });
  if (argv.some((x) => x.includes("\0"))) {
    return all({
      status: "bounced",
      dsn: "5.3.0",
      reason: `command argument contains a NUL byte: "${attrs.argv[0]}"`,
    });
  }
  if (req.verify) {
    return all({ status: "sent", dsn: "2.0.0", reason: `delivers to command: ${attrs.argv[0]}` });
  }
  if (capture) {
    return all({ status: "sent", dsn: "2.0.0", reason: `captured: would run ${argvText(argv)}` });
  }

  const copier = new LineCopier({ flags: attrs.flags, eol: attrs.eol });
  const head = envelopeLines({
    sender,
    recipient: first.address,
    original: original(first),
    flags: attrs.flags,
    eol: attrs.eol,
    now: new Date(now()),
  });
  async function* input(): AsyncGenerator<Uint8Array> {
    if (head.length) yield head;
    for await (const chunk of file.content()) yield* copier.push(chunk);
    yield* copier.end();
  }
  const timeLimit = timeLimitSeconds(ctx.config, service);
  // A plain program name: the first of /usr/bin, /bin that has it, as execvp().
  let result: CommandResult | null = null;
  for (const program of programCandidates(argv[0])) {
    result = await (opts.run ?? runCommand)({
      argv: [program, ...argv.slice(1)],
      ...(identity?.setIds ? { uid: identity.uid, gid: identity.gid } : {}),
      cwd: attrs.directory ?? ctx.config.str("queue_directory"),
      env: commandEnv(ctx.config, opts.getenv ?? safeGetenv),
      timeLimitMs: timeLimit * 1000,
      input: input(),
    });
    if (result.kind !== "spawn" || !result.notFound) break;
  }
  // Postfix 3.7's own warning at the limit (its log tools know it).
  if (result?.kind === "timeout") ctx.log.warn("pipe_command_read: read time limit exceeded");
  return all(commandOutcome(result!, {
    command: argv[0],
    sent: (output) =>
      `delivered via ${service} service${output.trimEnd() ? ` (${output.trimEnd()})` : ""}`,
  }));
}

/** SERVICE_time_limit, else command_time_limit, in seconds (at least 1). */
export function timeLimitSeconds(config: Config, service: string): number {
  const name = `${service}_time_limit`;
  const s = config.raw(name) !== undefined ? config.time(name) : config.time("command_time_limit");
  return Math.max(1, s);
}

/** PATH and the export_environment variables this process has, as Postfix's clean_env(). */
export function commandEnv(
  config: Config,
  getenv: (name: string) => string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of config.list("export_environment")) {
    const eq = item.indexOf("=");
    if (eq > 0) env[item.slice(0, eq)] = item.slice(eq + 1);
    else {
      const v = getenv(item);
      if (v !== undefined) env[item] = v;
    }
  }
  env.PATH = "/usr/bin:/bin";
  return env;
}

function safeGetenv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The recipient's address before rewriting (a DSN ORCPT is the client's, not ours). */
function original(r: DeliveryRecipient): string {
  return r.orcpt && !splitOrcpt(r.orcpt) ? r.orcpt : r.address;
}
