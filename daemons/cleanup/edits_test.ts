/**
 * Milter edits in cleanup: the pure header and body edits (edits.ts), the
 * checks on what smtpd sends (actions.ts contentEdits), and end to end
 * through a CleanupService: the queue file's headers, body, sender,
 * recipients and queue after late actions with edits.
 */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import {
  type CleanupEnvelope,
  CleanupSession,
  type ContentEdit,
  type MessageActions,
} from "../../lib/cleanup/client.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { CleanupService } from "./cleanup.ts";
import { contentEdits, foldValue, MalformedActions } from "./actions.ts";
import { canonicalBody, editContent } from "./edits.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (parts: Uint8Array[]) => parts.map((p) => dec.decode(p)).join("");
const MSG = "Received: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n";

Deno.test("edits: smtpd's deleteAuthResults removes the fields that claim our authserv-id", () => {
  const msg = [
    "Authentication-Results: MX.example; dmarc=pass header.from=bank.test",
    "Authentication-Results: (comment) mx.example 1; spf=pass",
    "Authentication-Results: mx.example dkim=pass (no semicolon: a lax reader takes it)",
    "Authentication-Results: other.example; spf=pass",
    "Authentication-Results: mx.example.evil; spf=pass",
    "Subject: s",
    "",
    "body",
    "",
  ].join("\r\n");
  const out = text(editContent([enc.encode(msg)], [
    { op: "deleteAuthResults", authservId: "mx.example" },
    { op: "insertHeader", index: 0, name: "Authentication-Results", value: " mx.example; none" },
  ], null));
  assertEquals(
    out,
    "Authentication-Results: mx.example; none\r\n" +
      "Authentication-Results: other.example; spf=pass\r\n" +
      "Authentication-Results: mx.example.evil; spf=pass\r\nSubject: s\r\n\r\nbody\r\n",
  );
  // Sent by a client (a milter's edits come this way too), it is checked like the others.
  assertThrows(
    () => contentEdits([{ op: "deleteAuthResults", authservId: "a\r\nb" }]),
    MalformedActions,
  );
});

Deno.test("edits: header edits in order, Sendmail's indexes", () => {
  const run = (edits: ContentEdit[]) => text(editContent([enc.encode(MSG)], edits, null));
  assertEquals(
    run([{ op: "addHeader", name: "X-New", value: "v" }]),
    "Received: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\nX-New: v\r\n\r\nbody\r\n",
  );
  assertEquals(
    run([{ op: "insertHeader", index: 0, name: "DKIM-Signature", value: "a=1;\r\n\tb=2" }]),
    "DKIM-Signature: a=1;\r\n\tb=2\r\nReceived: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n",
  );
  // changeHeader counts fields of the name from 1; an empty value deletes.
  assertEquals(
    run([
      { op: "changeHeader", index: 2, name: "x-a", value: "two" },
      { op: "changeHeader", index: 1, name: "Subject", value: "" },
    ]),
    "Received: by x\r\nX-A: 1\r\nX-A: two\r\n\r\nbody\r\n",
  );
  // No such occurrence: added; deleting one that is not there changes nothing.
  assertEquals(
    run([
      { op: "changeHeader", index: 3, name: "X-A", value: "three" },
      { op: "changeHeader", index: 5, name: "X-B", value: "" },
    ]),
    "Received: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\nX-A: three\r\n\r\nbody\r\n",
  );
  // An index past the end inserts last; a value with its own leading space keeps it.
  assertEquals(
    run([{ op: "insertHeader", index: 99, name: "X-Z", value: " lead" }]),
    "Received: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\nX-Z: lead\r\n\r\nbody\r\n",
  );
});

Deno.test("edits: a replaced body keeps the headers; line ends become CRLF", () => {
  assertEquals(
    text(editContent([enc.encode(MSG)], [], enc.encode("new\nbody\rend"))),
    "Received: by x\r\nSubject: one\r\nX-A: 1\r\nX-A: 2\r\n\r\nnew\r\nbody\r\nend\r\n",
  );
  // A message without a body gets the separating empty line.
  assertEquals(
    text(editContent([enc.encode("Subject: s\r\n")], [], enc.encode("b\r\n"))),
    "Subject: s\r\n\r\nb\r\n",
  );
  assertEquals(dec.decode(canonicalBody(enc.encode(""))), "");
  assertEquals(dec.decode(canonicalBody(enc.encode("a\r\n\r\n"))), "a\r\n\r\n");
});

Deno.test("edits: what smtpd sends is checked; values are folded, never new fields", () => {
  assertEquals(foldValue("a\nb\r\n\tc\n\n"), "a\r\n\tb\r\n\tc");
  assertEquals(contentEdits([{ op: "addHeader", name: "X", value: "1\nInjected: yes" }]), [
    { op: "addHeader", name: "X", value: "1\r\n\tInjected: yes" },
  ]);
  for (
    const bad of [
      [{ op: "addHeader", name: "Bad Name", value: "v" }],
      [{ op: "addHeader", name: "X", value: "nul\0" }],
      [{ op: "insertHeader", index: -1, name: "X", value: "v" }],
      [{ op: "changeHeader", index: 1.5, name: "X", value: "v" }],
      [{ op: "addRcpt", address: "a@b\r\nRCPT" }],
      [{ op: "replaceEverything" }],
      "not a list",
    ]
  ) assertThrows(() => contentEdits(bad), MalformedActions);
});

async function setup(mainCf = "") {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("cleanup", root, {
    mainCf: `myhostname = mx.test.example\nmyorigin = test.example\n` +
      `mydestination = test.example\n` +
      `virtual_alias_maps = inline:{ {team@test.example = x@test.example, y@test.example} }\n` +
      mainCf,
  });
  const svc = new CleanupService(fake.ctx, () => Promise.resolve());
  const sock = `${root}/cleanup.sock`;
  const server = ipcListen(sock, (c) => svc.handle(c));
  const submit = async (content: string, late: MessageActions, body?: string) => {
    const s = await CleanupSession.open(sock);
    const env: CleanupEnvelope = {
      sender: "a@test.example",
      recipients: [{ address: "b@test.example" }, { address: "c@test.example" }],
      actions: { more: true },
    };
    s.envelope(env);
    await s.write(enc.encode(content));
    s.lateActions(late, body === undefined ? undefined : enc.encode(body));
    return { r: await s.finish(), queueId: s.queueId };
  };
  const read = async (id: string, queue = "incoming") => {
    const f = await QueueFile.open(`${root}/queue/${queue}/${id}`);
    const parts: Uint8Array[] = [];
    for await (const c of f.content()) parts.push(c);
    f.close();
    return {
      sender: f.envelope.sender,
      rcpts: f.head.recipients.map((r) => r.address),
      content: text(parts),
    };
  };
  const done = async () => {
    await svc.close();
    server.close();
    await server.done;
    await Deno.remove(root, { recursive: true });
  };
  return { submit, read, done, lines: fake.lines };
}

Deno.test("cleanup: milter edits from the end-of-data actions reach the queue file", async (t) => {
  const c = await setup();
  try {
    await t.step("headers, sender and recipients", async () => {
      const { r, queueId } = await c.submit("Subject: s\r\n\r\nbody\r\n", {
        edits: [
          { op: "insertHeader", index: 0, name: "X-Signed", value: "yes" },
          { op: "changeFrom", address: "<new@test.example>" },
          { op: "deleteRcpt", address: "<c@test.example>" },
          { op: "addRcpt", address: "<team@test.example>" },
        ],
      });
      assertEquals(r.status, "ok", c.lines.join("\n"));
      const q = await c.read(queueId);
      assertEquals(q.sender, "new@test.example");
      // The added recipient is expanded through virtual_alias_maps like any other.
      assertEquals(q.rcpts, ["b@test.example", "x@test.example", "y@test.example"]);
      assertEquals(q.content.startsWith("X-Signed: yes\r\nSubject: s\r\n"), true, q.content);
    });
    await t.step("the body replaced", async () => {
      const { queueId } = await c.submit("Subject: s\r\n\r\nold\r\n", {}, "new body\n");
      const q = await c.read(queueId);
      assertEquals(q.content.endsWith("\r\n\r\nnew body\r\n"), true, q.content);
      assertEquals(q.content.includes("old"), false);
    });
    await t.step("quarantine: the message goes to hold/, the reason logged", async () => {
      const { r, queueId } = await c.submit("Subject: s\r\n\r\nb\r\n", { quarantine: "suspect" });
      assertEquals(r.status, "ok");
      await c.read(queueId, "hold");
      assertEquals(
        c.lines.some((l) => l.includes(`${queueId}: milter-hold:`) && l.includes("suspect")),
        true,
      );
    });
    await t.step("every recipient deleted: refused, nothing queued", async () => {
      const { r } = await c.submit("Subject: s\r\n\r\nb\r\n", {
        edits: [
          { op: "deleteRcpt", address: "b@test.example" },
          { op: "deleteRcpt", address: "c@TEST.EXAMPLE" },
        ],
      });
      assertEquals(r.status, "error");
    });
  } finally {
    await c.done();
  }
});

Deno.test("cleanup: a replacement body over message_size_limit is refused", async () => {
  const c = await setup("message_size_limit = 2000");
  try {
    const { r } = await c.submit("Subject: s\r\n\r\nb\r\n", {}, "x".repeat(5000));
    assertEquals(r.status === "error" && r.code, 552);
    // The connection stays in step for the next message.
    const { r: r2 } = await c.submit("Subject: s\r\n\r\nb\r\n", {});
    assertEquals(r2.status, "ok");
  } finally {
    await c.done();
  }
});
