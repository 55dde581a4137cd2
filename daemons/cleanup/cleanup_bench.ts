/**
 * What cleanup's rewriting and checks cost per message: the same small
 * message submitted through the cleanup service (IPC, queue file, fsync)
 * with no tables set, and with every table parameter set to a small
 * inline: table that does not match; and the rewriting steps alone with
 * no table set. Run: deno bench -A daemons/cleanup/
 */
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { CleanupSession } from "../../lib/cleanup/client.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { mapsOpener } from "../../lib/service/mod.ts";
import { AddressRewriter } from "./addresses.ts";
import { autoBcc } from "./bcc.ts";
import { CleanupService } from "./cleanup.ts";
import { rewriteAddress } from "../../lib/resolve/mod.ts";
import { rewriteHeaderAddresses } from "./rewrite.ts";
import { CleanupTables } from "./tables.ts";

const MESSAGE = new TextEncoder().encode(
  "From: Bob <bob@test.example>\r\nTo: alice@example.net, carol@example.org\r\n" +
    "Subject: hello\r\nMessage-ID: <1@test.example>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n" +
    "\r\n" + "a line of body text\r\n".repeat(100),
);

async function server(mainCf: string) {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("cleanup", root, {
    mainCf: `myhostname = mx.test.example\nmyorigin = test.example\n${mainCf}`,
  });
  const svc = new CleanupService(fake.ctx, () => Promise.resolve());
  const sock = `${root}/cleanup.sock`;
  ipcListen(sock, (c) => svc.handle(c));
  return async () => {
    const s = await CleanupSession.open(sock);
    s.envelope({
      sender: "bob@test.example",
      recipients: [{ address: "alice@example.net" }, { address: "carol@example.org" }],
    });
    await s.write(MESSAGE);
    const r = await s.finish();
    if (r.status !== "ok") throw new Error(JSON.stringify(r));
  };
}

const none = await server("");
const tables = (k: string) => `inline:{ {nomatch-${k}=x} }`;
const all = await server(
  [
    "canonical_maps",
    "sender_canonical_maps",
    "recipient_canonical_maps",
    "virtual_alias_maps",
    "sender_bcc_maps",
    "recipient_bcc_maps",
    "header_checks",
    "body_checks",
  ].map((k) => `${k} = ${tables(k)}`).join("\n") + "\nmasquerade_domains = other.example",
);

Deno.bench("cleanup, no tables set", { group: "cleanup", baseline: true }, none);
Deno.bench("cleanup, every table set (no match)", { group: "cleanup" }, all);

// The rewriting work alone, with no table set: what a message pays for the
// features in this folder when none is configured (a local client, so the
// From/To header addresses are parsed too).
const idle = await CleanupTables.open(
  makeConfig("/tmp", "myorigin = test.example\n"),
  mapsOpener(() => {}),
);
Deno.bench("rewriting steps, no tables set", { group: "steps" }, async () => {
  const rw = new AddressRewriter(
    idle,
    (a) => rewriteAddress(a, { myorigin: "test.example", mydomain: "example" }),
    () => {},
  );
  const sender = await rw.rewrite("bob@test.example", "envelopeSender");
  const r1 = await rw.rewrite("alice@example.net", "envelopeRecipient");
  const r2 = await rw.rewrite("carol@example.org", "envelopeRecipient");
  await rewriteHeaderAddresses("Bob <bob@test.example>", (a) => rw.rewrite(a, "headerSender"));
  await rewriteHeaderAddresses(
    "alice@example.net, carol@example.org",
    (a) => rw.rewrite(a, "headerRecipient"),
  );
  await rw.expand(r1);
  await rw.expand(r2);
  await autoBcc(idle, sender, [r1, r2]);
});
