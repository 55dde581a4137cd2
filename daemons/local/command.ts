/**
 * Delivery to a command, as Postfix's local(8) does for `|command` in
 * aliases, :include: files and .forward files, and for mailbox_command
 * (src/local/command.c, src/global/pipe_command.c, sys_exits.c).
 *
 * The command runs through the shell: local_command_shell when set (its
 * words, then the command as one more argument, e.g. `/usr/bin/sh -c`),
 * else `/bin/sh -c COMMAND` (Postfix execs a command without shell
 * metacharacters directly; the shell does the same thing for it, and only
 * the shell needs --allow-run). With the uid and gid of whoever's rights
 * apply (Deno.Command uid/gid, no supplementary groups) when local runs
 * as root, as this process otherwise.
 *
 * Its environment is built from nothing: the export_environment variables
 * local itself has, PATH=/usr/bin:/bin, and HOME, LOGNAME, USER, SHELL,
 * SENDER, RECIPIENT, LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT, each
 * value with every character command_expansion_filter does not list
 * replaced by "_". Addresses reach the command only there, never in its
 * command line, so no address can inject shell syntax. The working
 * directory is command_execution_directory (expanded with
 * execution_directory_expansion_filter), else the queue directory, as local(8)
 * says.
 *
 * Its standard input: the "From " line, Return-Path, X-Original-To and
 * Delivered-To (when prepend_delivered_header lists "command"), then the
 * message with LF line ends (no >From quoting, no blank line added). A
 * command that stops reading early is not an error.
 *
 * The run and its outcome are lib/deliver/command.ts's, shared with
 * pipe(8) as Postfix's pipe_command() is: up to 4096 bytes of its output
 * (tabs and newlines as spaces, other unprintable bytes as "_") appended
 * as ". Command output: ...", or, when the output starts with an enhanced
 * status code, that code and the rest of the output as the reason:
 * - exit 0: sent, "delivered to command: COMMAND";
 * - a sendmail exit status (64-78): its text and DSN code, deferred for
 *   EX_OSERR and EX_TEMPFAIL, bounced otherwise;
 * - another status: bounced 5.3.0 `Command died with status N: "COMMAND"`;
 * - killed by a signal: deferred 4.3.0 `Command died with signal N: "COMMAND"`;
 * - over command_time_limit: killed, bounced 5.3.0 `Command time limit
 *   exceeded: "COMMAND"` (Postfix kills the process group; Deno can kill
 *   only the process, so children that outlive the shell are not killed);
 * - not started (no shell, sandbox): deferred 4.3.0.
 *
 * @module
 */
import { headerAddress } from "../../lib/address/mod.ts";
import { asctime } from "../../lib/mailbox/mbox.ts";
import { CrlfToLf } from "../../lib/smtp/client_codec.ts";
import type { Identity } from "./mailbox.ts";
import { type CommandOutcome, commandOutcome, runCommand } from "../../lib/deliver/command.ts";

export type { CommandOutcome };

/** A command delivery. */
export interface CommandJob {
  /** The command text as the alias, .forward or mailbox_command gives it. */
  command: string;
  /** local_command_shell ("" for /bin/sh -c). */
  shell: string;
  /** Working directory, or "" for this process's. */
  cwd: string;
  /** The environment, already filtered. */
  env: Record<string, string>;
  /** command_time_limit in ms. */
  timeLimitMs: number;
  /** Whose rights (null: this process's). */
  as: Identity | null;
  sender: string;
  originalRecipient?: string;
  /** Delivered-To, or undefined when prepend_delivered_header does not list "command". */
  delivered?: string;
  /** The message in canonical CRLF form. */
  content: () => AsyncIterable<Uint8Array>;
  /** Clock for the From line. @default new Date() */
  now?: () => Date;
}

/** The argv a command runs with: local_command_shell's words and the command, or /bin/sh -c. */
export function commandArgv(command: string, shell: string): string[] {
  const words = shell.trim() === "" ? ["/bin/sh", "-c"] : shell.trim().split(/[ \t\r\n]+/);
  return [...words, command];
}

/** Runs one command delivery (lib/deliver/command.ts). Never throws for the command's failures. */
export async function deliverCommand(job: CommandJob): Promise<CommandOutcome> {
  const result = await runCommand({
    argv: commandArgv(job.command, job.shell),
    ...(job.as ? { uid: job.as.uid, gid: job.as.gid } : {}),
    cwd: job.cwd,
    env: job.env,
    timeLimitMs: job.timeLimitMs,
    input: commandInput(job),
  });
  return commandOutcome(result, {
    command: job.command,
    sent: () => `delivered to command: ${job.command}`,
  });
}

/** What the command reads: {@link commandHeaders}, then the message with LF line ends. */
async function* commandInput(job: CommandJob): AsyncIterable<Uint8Array> {
  yield new TextEncoder().encode(commandHeaders(job, (job.now ?? (() => new Date()))()));
  const lf = new CrlfToLf();
  for await (const chunk of job.content()) yield lf.push(chunk);
  yield lf.end();
}

/** The lines a command gets before the message. */
export function commandHeaders(
  job: Pick<CommandJob, "sender" | "originalRecipient" | "delivered">,
  date: Date,
): string {
  const sender = headerAddress(job.sender);
  let out = `From ${job.sender === "" ? "MAILER-DAEMON" : sender}  ${asctime(date)}\n` +
    `Return-Path: <${job.sender === "" ? "" : sender}>\n`;
  if (job.originalRecipient) out += `X-Original-To: ${headerAddress(job.originalRecipient)}\n`;
  if (job.delivered !== undefined) out += `Delivered-To: ${headerAddress(job.delivered)}\n`;
  return out;
}
