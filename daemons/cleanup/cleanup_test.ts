import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { type CleanupEnvelope, CleanupSession } from "../../lib/cleanup/client.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { CleanupService, dedupe } from "./cleanup.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function setup(mainCf = "") {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("cleanup", root, {
    mainCf: `myhostname = mx.test.example\nmyorigin = test.example\n${mainCf}`,
  });
  const notified: string[] = [];
  const svc = new CleanupService(fake.ctx, (ids) => {
    notified.push(...ids);
    return Promise.resolve();
  });
  const sock = `${root}/cleanup.sock`;
  const server = ipcListen(sock, (c) => svc.handle(c));
  const submit = async (env: CleanupEnvelope, content: string) => {
    const s = await CleanupSession.open(sock);
    s.envelope(env);
    await s.write(enc.encode(content));
    const r = await s.finish();
    return { r, queueId: s.queueId };
  };
  const read = async (id: string) => {
    const f = await QueueFile.open(`${root}/queue/incoming/${id}`);
    const out = {
      env: f.envelope,
      rcpts: f.head.recipients,
      text: dec.decode(await f.readContent()),
    };
    f.close();
    return out;
  };
  const done = async () => {
    await svc.close();
    server.close();
    await server.done;
    await Deno.remove(root, { recursive: true });
  };
  return { submit, read, done, notified, lines: fake.lines, root };
}

Deno.test("cleanup: message_size_limit = 0 is no limit, as in Postfix", async () => {
  const env = await setup("message_size_limit = 0");
  try {
    const { r } = await env.submit(
      { sender: "s@x.example", recipients: [{ address: "a@x.example" }] },
      "Subject: any size\r\n\r\n" + "x".repeat(3000) + "\r\n",
    );
    assertEquals(r.status, "ok");
  } finally {
    await env.done();
  }
});

Deno.test("cleanup", async (t) => {
  const env = await setup("message_size_limit = 2000\nhopcount_limit = 3");
  try {
    await t.step("writes a durable queue file and adds missing headers", async () => {
      const { r, queueId } = await env.submit(
        { sender: "bob", recipients: [{ address: "alice@localhost" }] },
        "Subject: hi\r\n\r\nbody\r\n",
      );
      assertEquals(r, { status: "ok", queueId });
      const q = await env.read(queueId);
      assertEquals(q.env.sender, "bob@test.example");
      assertMatch(
        q.text,
        /^Subject: hi\r\nMessage-Id: <\d{14}\.[0-9A-F]+@mx\.test\.example>\r\nDate: .+\r\nFrom: bob@test\.example\r\n\r\nbody\r\n$/,
      );
      await new Promise((r) => setTimeout(r, 10));
      assert(env.notified.includes(queueId), "qmgr woken with the new id");
      assert(env.lines.some((l) => l.startsWith(`${queueId}: message-id=<`)));
    });
    await t.step("keeps existing headers and removes duplicate recipients", async () => {
      const { r, queueId } = await env.submit(
        {
          sender: "a@x.example",
          recipients: [{ address: "u@Example.COM" }, { address: "u@example.com" }, {
            address: "v",
          }],
        },
        "From: A <a@x.example>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@x>\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      const q = await env.read(queueId);
      assertEquals(q.rcpts.map((x) => x.address), ["u@Example.COM", "v@test.example"]);
      assertEquals(q.env.messageId, "<m1@x>");
      assert(!q.text.includes("Message-Id:"), "no second Message-Id");
    });
    await t.step("extracts recipients from headers and drops Bcc (sendmail -t)", async () => {
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: [], extractRecipients: true },
        "To: a@x.example, B <b@y.example>\r\nCc: c@z.example\r\nBcc: hidden@w.example\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      const q = await env.read(queueId);
      assertEquals(q.rcpts.map((x) => x.address), [
        "a@x.example",
        "b@y.example",
        "c@z.example",
        "hidden@w.example",
      ]);
      assert(!q.text.includes("Bcc:"), "Bcc header removed");
    });
    await t.step("rejects mail over message_size_limit with 552 and leaves nothing", async () => {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: [{ address: "a@x.example" }] },
        "Subject: big\r\n\r\n" + "x".repeat(3000) + "\r\n",
      );
      assertEquals(r.status, "error");
      if (r.status === "error") assertEquals([r.code, r.dsn], [552, "5.3.4"]);
    });
    await t.step("rejects a mail loop (too many Received headers) with 554 5.4.0", async () => {
      const received = "Received: from a by b; Mon, 30 Nov 2026 10:00:00 +0000\r\n".repeat(4);
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: [{ address: "a@x.example" }] },
        `${received}Subject: loop\r\n\r\nb\r\n`,
      );
      assertEquals(r.status, "error");
      if (r.status === "error") {
        assertEquals([r.code, r.dsn], [554, "5.4.0"]);
        assertStringIncludes(r.text, "too many hops");
      }
    });
    await t.step("nothing half-written stays in incoming/", () => {
      const names = [...Deno.readDirSync(`${env.root}/queue/incoming`)].map((e) => e.name);
      assert(names.every((n) => /^[0-9A-F]{15}$/.test(n)), names.join(","));
      assertEquals(names.length, 3);
    });
  } finally {
    await env.done();
  }
});

Deno.test("cleanup helpers", async (t) => {
  await t.step("dedupe keeps the first, folds domain case only", () => {
    assertEquals(
      dedupe([{ address: "A@x.org" }, { address: "A@X.ORG" }, { address: "a@x.org" }]).map((r) =>
        r.address
      ),
      ["A@x.org", "a@x.org"],
    );
  });
});

Deno.test("cleanup: append_at_myorigin = no leaves addresses without domain as they are", async () => {
  const env = await setup("append_at_myorigin = no");
  try {
    const { r, queueId } = await env.submit(
      { sender: "bob", recipients: [{ address: "alice" }, { address: "carol@x.example" }] },
      "Subject: hi\r\n\r\nbody\r\n",
    );
    assertEquals(r.status, "ok");
    const q = await env.read(queueId);
    assertEquals(q.env.sender, "bob");
    assertEquals(q.rcpts.map((x) => x.address), ["alice", "carol@x.example"]);
  } finally {
    await env.done();
  }
});

Deno.test("cleanup: header names like __proto__ are plain data, never address fields", async () => {
  // A local submission: From: and To: get @$myorigin, as Postfix; fields named like
  // JavaScript object keys are no address fields and keep their text.
  const env = await setup();
  try {
    const { r, queueId } = await env.submit(
      { sender: "bob", recipients: [{ address: "alice@localhost" }] },
      "From: bob\r\nTo: carol\r\n__proto__: dave\r\nconstructor: erin\r\ntoString: frank\r\n" +
        "hasOwnProperty: gina\r\nConstructor: hank\r\n\r\nbody\r\n",
    );
    assertEquals(r.status, "ok");
    const q = await env.read(queueId);
    assertStringIncludes(
      q.text,
      "From: bob@test.example\r\nTo: carol@test.example\r\n__proto__: dave\r\nconstructor: erin\r\n" +
        "toString: frank\r\nhasOwnProperty: gina\r\nConstructor: hank\r\n",
    );
  } finally {
    await env.done();
  }
});
