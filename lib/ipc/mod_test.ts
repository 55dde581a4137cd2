import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import {
  acceptLoop,
  type IpcConn,
  ipcConnect,
  IpcError,
  ipcListen,
  ipcRequest,
  setIpcWaker,
} from "./mod.ts";

Deno.test("ipc", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  const server = ipcListen(path, async (conn) => {
    const req = await conn.recvMsg();
    if (req.op === "echo") {
      const chunks: Uint8Array[] = [];
      for (;;) {
        const f = await conn.recv();
        if (!f || f.kind === "end") break;
        if (f.kind === "data") chunks.push(f.data);
      }
      await conn.send({ ok: true, n: chunks.reduce((a, c) => a + c.length, 0), tag: req.tag });
    } else if (req.op === "hang") {
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  await t.step("request with streamed content", async () => {
    const conn = await ipcConnect(path);
    conn.queueMsg({ op: "echo", tag: "x" });
    conn.queueData(new Uint8Array(100_000));
    conn.queueData(new Uint8Array(5));
    conn.queueEnd();
    await conn.flush();
    assertEquals(await conn.recvMsg(), { ok: true, n: 100_005, tag: "x" });
    conn.close();
  });

  await t.step("read timeout is an IpcError", async () => {
    await assertRejects(
      () => ipcRequest(path, { op: "hang" }, { timeoutMs: 50 }),
      IpcError,
      "timeout",
    );
  });

  await t.step("malformed frame is an IpcError", async () => {
    const evil = ipcListen(`${dir}/evil`, async (conn) => {
      await conn.recvMsg();
      // reply with a frame whose length is absurd
    });
    const raw = Deno.listen({ transport: "unix", path: `${dir}/raw` });
    const accept = (async () => {
      const c = await raw.accept();
      await c.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x4d]));
      c.close();
    })();
    await assertRejects(() => ipcRequest(`${dir}/raw`, { op: "x" }), IpcError, "malformed");
    await accept;
    raw.close();
    evil.close();
    await evil.done;
  });

  await t.step("concurrent sends of large messages do not interleave", async () => {
    // The reader starts late, so the socket buffer fills and writes are partial.
    const got: number[] = [];
    const read = Promise.withResolvers<void>();
    const slow = ipcListen(`${dir}/slow`, async (conn) => {
      await new Promise((r) => setTimeout(r, 100));
      try {
        for (let i = 0; i < 20; i++) got.push(((await conn.recvMsg()) as { i: number }).i);
      } finally {
        read.resolve();
      }
    });
    const conn = await ipcConnect(`${dir}/slow`);
    const pad = "x".repeat(200_000);
    await Promise.all(Array.from({ length: 20 }, (_, i) => conn.send({ i, pad })));
    await read.promise;
    assertEquals(got, Array.from({ length: 20 }, (_, i) => i));
    conn.close();
    slow.close();
    await slow.done;
  });

  await t.step("missing socket is an IpcError", async () => {
    await assertRejects(() => ipcConnect(`${dir}/nope`), IpcError, "connect");
  });

  server.close();
  await server.done;
  await Deno.remove(dir, { recursive: true });
});

Deno.test("acceptLoop survives a failed accept (EMFILE) and ends only when closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pw-accept-" });
  const path = `${dir}/s`;
  const real = Deno.listen({ transport: "unix", path });
  let fail = 2;
  // A listener whose first accepts fail as they do when the process is out of descriptors.
  const flaky = {
    accept: () => {
      if (fail-- > 0) return Promise.reject(new Error("Too many open files (os error 24)"));
      return real.accept();
    },
    close: () => real.close(),
  } as unknown as Deno.Listener<Deno.UnixConn>;
  const errors: string[] = [];
  let served = 0;
  const loop = acceptLoop(flaky, (c) => {
    served++;
    c.close();
  }, { onError: (e) => errors.push(e.message), pauseMs: 5 });
  try {
    const c = await Deno.connect({ transport: "unix", path });
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    assertEquals(errors.length, 2);
    assertEquals(served, 1, "the loop went on accepting after the errors");
  } finally {
    loop.close();
    await loop.done;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a socket with no daemon behind it is woken once, then tried until it binds", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/agent`;
  const asked: string[] = [];
  let server: { close(): void; done: Promise<void> } | null = null;
  setIpcWaker((p) => {
    asked.push(p);
    if (p !== path) return Promise.resolve(false);
    // The daemon binds a while after master has started it.
    setTimeout(() => {
      server = ipcListen(path, async (c) => {
        await c.send({ hello: true });
      });
    }, 200);
    return Promise.resolve(true);
  });
  try {
    const conn = await ipcConnect(path);
    assertEquals(await conn.recvMsg(), { hello: true });
    conn.close();
    assertEquals(asked, [path]);
    // A path the waker does not start fails at once, as without one.
    await assertRejects(() => ipcConnect(`${dir}/other`), IpcError, "connect to");
    assertEquals(asked, [path, `${dir}/other`]);
  } finally {
    setIpcWaker(null);
    const s = server as { close(): void; done: Promise<void> } | null;
    s?.close();
    await s?.done;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ipcListen: a new listener replaces the path; the old one's close leaves it to the new", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/svc`;
  const answer = (who: string) => async (conn: IpcConn) => {
    await conn.recvMsg();
    await conn.send({ who });
  };
  const old = ipcListen(path, answer("old"));
  const next = ipcListen(path, answer("new"));
  assertEquals((await ipcRequest<{ who: string }>(path, {})).who, "new");
  old.close();
  await old.done;
  assertEquals((await ipcRequest<{ who: string }>(path, {})).who, "new");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["svc"]);
  next.close();
  await next.done;
  // The last one's close removes the path: a client finds no socket.
  assertEquals([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir);
});
