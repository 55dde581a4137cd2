/**
 * Test helpers for daemon code: a {@link ServiceContext} built by hand (a
 * config from main.cf text, a logger that captures lines, a queue
 * directory under a temporary root) and a writer for small queue files.
 * No daemon is started and nothing listens.
 */
import { makeConfig, type MasterService } from "../../lib/config/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import {
  DirSyncer,
  type Envelope,
  newQueueId,
  QueueDir,
  QueueWriter,
  type Recipient,
} from "../../lib/queue/mod.ts";
import type { DaemonArgs } from "../../lib/service/args.ts";
import { mapsOpener, type ServiceContext } from "../../lib/service/mod.ts";

/** A context plus what tests look at. */
export interface FakeService {
  ctx: ServiceContext;
  /** Log lines written so far, without the syslog prefix. */
  lines: string[];
  /** Aborts ctx.signal (stops background loops). */
  abort: AbortController;
}

/** Options for {@link fakeService}. */
export interface FakeServiceOptions {
  /** main.cf text; `queue_directory = ROOT/queue` is prepended. @default "" */
  mainCf?: string;
  /** Service name in ctx.args. @default the program name */
  service?: string;
  /** Host name for the myhostname default. @default "mx.example.com" */
  hostname?: string;
}

/** Builds a context for `program` with its queue under `root` (folders created). */
export async function fakeService(
  program: string,
  root: string,
  opts: FakeServiceOptions = {},
): Promise<FakeService> {
  const queueDir = `${root}/queue`;
  const config = makeConfig(root, `queue_directory = ${queueDir}\n${opts.mainCf ?? ""}`, {
    hostname: opts.hostname ?? "mx.example.com",
  });
  const lines: string[] = [];
  const log = new Logger({
    program: `postwarden/${program}`,
    hostname: "mx",
    sinks: [(line) => lines.push(line.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const queue = new QueueDir(queueDir);
  await queue.create();
  const abort = new AbortController();
  const args: DaemonArgs = {
    configDir: root,
    service: opts.service ?? program,
    type: "unix",
    overrides: {},
    publicService: false,
  };
  const ctx: ServiceContext = {
    config,
    log,
    queue,
    args,
    services: [],
    peer: (name) => queue.privateSocket(name),
    signal: abort.signal,
    maps: mapsOpener((m) => log.warn(m)),
  };
  return { ctx, lines, abort };
}

/** Writes a complete queue file into `dir` and returns its id and path. */
export async function writeQueueFile(
  dir: string,
  env: Partial<Envelope> & { sender: string },
  recipients: Recipient[],
  content: string | Uint8Array,
): Promise<{ queueId: string; path: string }> {
  const queueId = env.queueId ?? newQueueId();
  const w = new QueueWriter(dir, queueId, new DirSyncer(dir));
  await w.begin({ queueId, arrival: Date.now(), ...env }, recipients);
  await w.write(typeof content === "string" ? new TextEncoder().encode(content) : content);
  await w.commit();
  return { queueId, path: `${dir}/${queueId}` };
}

/** A master.cf `unix` service entry for daemon tests (qmgr's transports). */
export function unixService(name: string, command = name, maxproc = 100): MasterService {
  return {
    name,
    type: "unix",
    private: true,
    unprivileged: true,
    chroot: false,
    wakeup: 0,
    maxproc,
    command,
    args: [],
    overrides: {},
    line: 1,
  };
}
