/**
 * A fake cleanup service for pickup tests: listens on a socket, records
 * each submission (envelope, content, and whether the submitted maildrop
 * file still existed when cleanup was about to answer) and answers with a
 * verdict the test chooses.
 */
import { type CleanupEnvelope, type CleanupResult } from "../../lib/cleanup/client.ts";
import { ipcListen, type IpcServer } from "../../lib/ipc/mod.ts";
import { assertEquals } from "./assert.ts";

/** One message as the fake cleanup received it. */
export interface Submission {
  envelope: CleanupEnvelope;
  content: string;
  /** Whether maildrop/ still held a (non-dot) file when cleanup was about to answer. */
  fileStillThere: boolean;
}

/** A cleanup on `path` that records submissions and answers with `answer()`. */
export function fakeCleanup(
  path: string,
  maildrop: string,
  answer: () => CleanupResult = () => ({ status: "ok", queueId: "" }),
): { server: IpcServer; got: Submission[] } {
  const got: Submission[] = [];
  let n = 0;
  const server = ipcListen(path, async (conn) => {
    const open = await conn.recvMsg<{ op: string }>();
    assertEquals(open.op, "open");
    const queueId = `CLEANUP${++n}`;
    await conn.send({ queueId });
    const { op: _op, ...envelope } = await conn.recvMsg<CleanupEnvelope & { op: string }>();
    let content = "";
    const dec = new TextDecoder();
    for (;;) {
      const f = await conn.recv();
      if (f === null) return;
      if (f.kind === "end") break;
      if (f.kind === "data") content += dec.decode(f.data, { stream: true });
    }
    let names = 0;
    for await (const e of Deno.readDir(maildrop)) if (!e.name.startsWith(".")) names++;
    got.push({ envelope, content, fileStillThere: names > 0 });
    const a = answer();
    await conn.send(a.status === "ok" ? { ...a, queueId } : a);
  });
  return { server, got };
}
