/**
 * smtpd's access-table actions in cleanup: what the envelope and the
 * end-of-data message carry, merged with header_checks, and where the
 * message ends up (hold/, nowhere, other recipients).
 */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import {
  type CleanupEnvelope,
  CleanupSession,
  type MessageActions,
} from "../../lib/cleanup/client.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { CleanupService } from "./cleanup.ts";
import { MalformedActions, mergeActions, messageActions } from "./actions.ts";

const enc = new TextEncoder();

async function setup(mainCf: string) {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("cleanup", root, {
    mainCf: `myhostname = mx.test.example\nmyorigin = test.example\n` +
      `mydestination = test.example\n${mainCf}`,
  });
  const svc = new CleanupService(fake.ctx, () => Promise.resolve());
  const sock = `${root}/cleanup.sock`;
  const server = ipcListen(sock, (c) => svc.handle(c));
  const submit = async (env: CleanupEnvelope, content: string, late?: MessageActions) => {
    const s = await CleanupSession.open(sock);
    s.envelope(env);
    await s.write(enc.encode(content));
    if (late) s.lateActions(late);
    return { r: await s.finish(), queueId: s.queueId };
  };
  const rcpts = async (id: string, queue: string) => {
    const f = await QueueFile.open(`${root}/queue/${queue}/${id}`);
    const out = f.head.recipients.map((r) => r.address + (r.notify ? ` ${r.notify}` : ""));
    f.close();
    return out;
  };
  const filterOf = async (id: string) => {
    const f = await QueueFile.open(`${root}/queue/incoming/${id}`);
    f.close();
    return f.envelope.filter;
  };
  const list = (queue: string) =>
    [...Deno.readDirSync(`${root}/queue/${queue}`)].filter((e) => !e.name.startsWith("."))
      .map((e) => e.name);
  const done = async () => {
    await svc.close();
    server.close();
    await server.done;
    await Deno.remove(root, { recursive: true });
  };
  return { submit, rcpts, list, filterOf, done, lines: fake.lines };
}

const MSG = "Subject: test\r\n\r\nbody\r\n";
const env = (actions?: MessageActions): CleanupEnvelope => ({
  sender: "a@test.example",
  recipients: [{ address: "b@test.example" }, { address: "c@test.example" }],
  ...(actions ? { actions } : {}),
});

Deno.test("cleanup: smtpd's access actions", async (t) => {
  const c = await setup(
    "header_checks = regexp:{ {/^Subject: redirect-me/ REDIRECT hc@test.example}, {/^Subject: filter-me/ FILTER hc:[10.0.0.1]} }",
  );
  try {
    await t.step("HOLD: the queue file goes to hold/", async () => {
      const { r, queueId } = await c.submit(env({ hold: true }), MSG);
      assertEquals(r.status, "ok", c.lines.join("\n"));
      assertEquals(c.list("hold").includes(queueId), true);
      assertEquals(c.list("incoming").includes(queueId), false);
    });
    await t.step("DISCARD: success, nothing queued", async () => {
      const { r, queueId } = await c.submit(env({ discard: true }), MSG);
      assertEquals(r, { status: "ok", queueId });
      assertEquals(c.list("incoming").includes(queueId), false);
      assertEquals(c.list("hold").includes(queueId), false);
    });
    await t.step("REDIRECT replaces the recipients; BCC adds NOTIFY=NEVER ones", async () => {
      const { queueId } = await c.submit(
        env({ redirect: "boss@test.example", bcc: ["x@test.example", "y@test.example"] }),
        MSG,
      );
      assertEquals(await c.rcpts(queueId, "incoming"), [
        "boss@test.example",
        "x@test.example NEVER",
        "y@test.example NEVER",
      ]);
    });
    await t.step("header_checks REDIRECT wins over smtpd's (it comes later)", async () => {
      const { queueId } = await c.submit(
        env({ redirect: "boss@test.example" }),
        "Subject: redirect-me\r\n\r\nbody\r\n",
      );
      assertEquals(await c.rcpts(queueId, "incoming"), ["hc@test.example"]);
    });
    await t.step("end-of-data actions: content held, late HOLD and REDIRECT applied", async () => {
      const { r, queueId } = await c.submit(
        env({ redirect: "boss@test.example", more: true }),
        "Subject: redirect-me\r\n\r\nbody\r\n",
        { hold: true, redirect: "late@test.example" },
      );
      assertEquals(r.status, "ok");
      assertEquals(await c.rcpts(queueId, "hold"), ["late@test.example"]);
    });
    await t.step("end-of-data DISCARD: nothing queued", async () => {
      const { r, queueId } = await c.submit(env({ more: true }), MSG, { discard: true });
      assertEquals(r.status, "ok");
      assertEquals([...c.list("incoming"), ...c.list("hold")].includes(queueId), false);
    });
    await t.step("`more` without the end-of-data message: nothing queued", async () => {
      const { r, queueId } = await c.submit(env({ more: true }), MSG);
      assertEquals(r.status, "error");
      assertEquals([...c.list("incoming"), ...c.list("hold")].includes(queueId), false);
    });
    await t.step(
      "FILTER: smtpd's is recorded; header_checks' wins; the late one wins over both",
      async () => {
        const f = "smtp:[127.0.0.1]:10024";
        assertEquals(await c.filterOf((await c.submit(env({ filter: f }), MSG)).queueId), f);
        const hc = await c.submit(env({ filter: f }), "Subject: filter-me\r\n\r\nbody\r\n");
        assertEquals(await c.filterOf(hc.queueId), "hc:[10.0.0.1]");
        const late = await c.submit(
          env({ filter: f, more: true }),
          "Subject: filter-me\r\n\r\nbody\r\n",
          { filter: "late:[10.0.0.2]" },
        );
        assertEquals(await c.filterOf(late.queueId), "late:[10.0.0.2]");
        assertEquals(await c.filterOf((await c.submit(env(), MSG)).queueId), undefined);
      },
    );
    await t.step("a malformed action refuses the message (never routed elsewhere)", async () => {
      const bad = { redirect: "a@b\r\nX-Injected: 1" } as unknown as MessageActions;
      const { r, queueId } = await c.submit(env(bad), MSG);
      assertEquals(r.status, "error");
      assertEquals([...c.list("incoming"), ...c.list("hold")].includes(queueId), false);
    });
    await t.step("no actions: incoming/, both recipients", async () => {
      const { queueId } = await c.submit(env(), MSG);
      assertEquals(await c.rcpts(queueId, "incoming"), ["b@test.example", "c@test.example"]);
    });
  } finally {
    await c.done();
  }
});

Deno.test("cleanup: action records are checked and merged in Postfix's order", () => {
  assertEquals(
    messageActions({
      hold: false,
      discard: true,
      filter: "smtp:[127.0.0.1]:10024",
      bcc: ["ok@x"],
      op: "actions",
    }),
    { discard: true, filter: "smtp:[127.0.0.1]:10024", bcc: ["ok@x"] },
  );
  // A folded Authentication-Results payload is fine.
  const seal = { cv: "pass" as const, instance: 1, authResults: "\r\n\tspf=pass;\r\n\tdkim=none" };
  assertEquals(messageActions({ arcSeal: seal }), { arcSeal: seal });
  assertEquals(messageActions(null), {});
  assertEquals(messageActions(undefined), {});
  for (
    const bad of [
      { redirect: "a@b\r\nX: y" },
      { redirect: "x".repeat(3000) },
      { bcc: ["ok@x", 5] },
      // An ARC seal's payload that would end the ARC-Authentication-Results field.
      { arcSeal: { cv: "none", instance: 0, authResults: "spf=pass\r\nX-Injected: 1" } },
      { arcSeal: { cv: "maybe", instance: 0, authResults: "" } },
      { arcSeal: { cv: "pass", instance: 51, authResults: "" } },
      { bcc: "a@b" },
      { filter: "" },
      { hold: "yes" },
      "hold",
    ]
  ) {
    assertThrows(() => messageActions(bad), MalformedActions);
  }
  const content = { hold: false, discard: false, redirect: undefined, bcc: ["c@x"] };
  assertEquals(
    mergeActions({ hold: true, redirect: "e@x", bcc: ["e@x"] }, content, { bcc: ["l@x"] }),
    { hold: true, discard: false, redirect: "e@x", bcc: ["e@x", "c@x", "l@x"] },
  );
  assertEquals(
    mergeActions({ redirect: "e@x", filter: "a:b" }, { ...content, redirect: "c@x" }, {
      filter: "l:m",
    }).redirect,
    "c@x",
  );
  assertEquals(mergeActions({ filter: "a:b" }, content, { filter: "l:m" }).filter, "l:m");
});
