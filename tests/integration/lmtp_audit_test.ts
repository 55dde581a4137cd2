/**
 * `postwarden audit` with Dovecot-style LMTP routes (virtual_transport =
 * lmtp:unix:..., relay_transport = lmtp:inet:[127.0.0.1]:port): the lmtp
 * daemon's sandbox reaches exactly those two servers, measured live by the
 * probe, and no other daemon reaches either.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, postwardenArgs } from "../helpers/instance.ts";
import { run } from "../helpers/peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "postwarden audit: only lmtp reaches the LMTP servers the configuration names",
  ...opts,
  fn: async () => {
    const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
    const dir = await Deno.makeTempDir({ prefix: "postwarden-lmtp-audit-" });
    await Deno.chmod(dir, 0o755);
    const port = freePort();
    const socket = `${dir}/dovecot-lmtp`;
    const tcp = Deno.listen({ hostname: "127.0.0.1", port });
    const unix = Deno.listen({ transport: "unix", path: socket });
    await Deno.chmod(socket, 0o666);
    const accept = (l: Deno.Listener) =>
      (async () => {
        for await (const c of l) c.close();
      })().catch(() => {});
    const accepting = [accept(tcp), accept(unix)];
    try {
      const conf = `${dir}/conf`;
      await Deno.mkdir(conf);
      await Deno.writeTextFile(
        `${conf}/main.cf`,
        (await Deno.readTextFile(`${root}/conf/main.cf`)) +
          `myhostname = mx.test.example\nqueue_directory = ${dir}/var\n` +
          `maillog_file = ${dir}/var/log/maillog\nmail_spool_directory = ${dir}/var/mail/\n` +
          `virtual_mailbox_domains = example.com\nvirtual_transport = lmtp:unix:${socket}\n` +
          `relay_domains = example.net\nrelay_transport = lmtp:inet:[127.0.0.1]:${port}\n`,
      );
      await Deno.writeTextFile(
        `${conf}/master.cf`,
        (await Deno.readTextFile(`${root}/conf/master.cf`))
          .replace(/^2525(\s+inet)/m, `127.0.0.1:${freePort()}$1`),
      );
      const r = await run(Deno.execPath(), postwardenArgs(conf, "audit"));
      assertEquals(r.code, 0, r.stderr + r.stdout);
      const blocks = r.stdout.split(/\n(?=\S)/);
      const probes = [
        `connect to LMTP server ${socket}`,
        `connect to LMTP server 127.0.0.1:${port}`,
      ];
      const esc = (s: string) => s.replace(/[[\].]/g, "\\$&");
      const lmtp = blocks.find((b) => b.startsWith("lmtp/unix (lmtp)"));
      assert(lmtp, r.stdout);
      for (const p of probes) assertMatch(lmtp, new RegExp(`^ {2}can +${esc(p)}$`, "m"));
      assertStringIncludes(lmtp, `127.0.0.1:${port}`); // in its --allow-net
      assertStringIncludes(lmtp, `unix:${socket}`);
      const others = blocks.filter((b) => /^\S+\/(inet|unix) \(/.test(b) && b !== lmtp);
      assert(others.length >= 8, r.stdout);
      for (const b of others) {
        for (const p of probes) assertMatch(b, new RegExp(`^ {2}cannot ${esc(p)}`, "m"));
      }
    } finally {
      tcp.close();
      unix.close();
      await Promise.all(accepting);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
