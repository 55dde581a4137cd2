/**
 * The pipe delivery agent in a whole instance (needs root: master starts
 * pipe as root and the command runs as user=nobody). Mail routed to a
 * pipe service by transport_maps reaches the argv= program once per
 * recipient (SERVICE_destination_recipient_limit = 1), with the hostile
 * local parts a client may send as exact arguments, the D and R lines
 * before the message, and the exit status as Postfix's log shows it.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { smtpSend, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { haveRoot } from "../helpers/peers.ts";

Deno.test({
  name: "pipe: transport_maps to a pipe service, the command as user=, Postfix's statuses",
  ignore: !haveRoot("the pipe integration test"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const out = await Deno.makeTempDir({ prefix: "pipe-out-" });
    await Deno.chmod(out, 0o777);
    const script = `${out}/deliver.sh`;
    // Writes the message to a file named by its first argument; "nouser" exits EX_NOUSER.
    await Deno.writeTextFile(
      script,
      '#!/bin/sh\ncase "$1" in nouser@*) echo "no such mailbox"; exit 67;; esac\n' +
        `id -u > "${out}/uid"\nprintf %s "$2" > "${out}/nexthop"\ncat > "${out}/msg-$1"\n`,
      { mode: 0o755 },
    );
    await Deno.chmod(script, 0o755);
    const master = await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url));
    const inst = await startInstance({
      mainCf: [
        "transport_maps = inline:{ pipe.example=mypipe: }",
        "mypipe_destination_recipient_limit = 1",
        // A leading "-" is refused before delivery unless allowed; allowed here to reach pipe.
        "allow_min_user = yes",
      ].join("\n"),
      masterCf: master +
        `mypipe unix - n n - - pipe flags=DRq user=nobody argv=${script} \${recipient} \${nexthop}\n`,
    });
    try {
      const hostile = ['"a;touch pwned $(id) `id`"@pipe.example', "-oQx@pipe.example"];
      await t.step("each recipient reaches the program as one exact argument", async () => {
        const r = await smtpSend(inst.port, {
          from: "sender@example.com",
          to: [...hostile, "nouser@pipe.example"],
          body: "Subject: piped\r\n\r\nhello\r\n",
        });
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitForLog(inst, /to=<-oQx@pipe.example>.*status=sent/, 30_000);
        await waitForLog(inst, /to=<"a;touch.*status=sent/, 30_000);
        const names: string[] = [];
        for await (const e of Deno.readDir(out)) names.push(e.name);
        // q quotes the local part of ${recipient} as RFC 5322 does.
        assertEquals(
          names.filter((n) => n.startsWith("msg-")).sort(),
          ['msg-"a;touch pwned $(id) `id`"@pipe.example', "msg--oQx@pipe.example"].sort(),
        );
        const msg = await Deno.readTextFile(`${out}/msg--oQx@pipe.example`);
        assertMatch(
          msg,
          /^Return-Path: <sender@example.com>\nDelivered-To: -oQx@pipe.example\n[\s\S]*Subject: piped\n[\s\S]*\nhello\n$/,
        );
        assertEquals((await Deno.readTextFile(`${out}/uid`)).trim(), "65534");
        // transport_maps "mypipe:" with no next hop: the recipient's domain, as Postfix.
        assertEquals(await Deno.readTextFile(`${out}/nexthop`), "pipe.example");
        let pwned = true;
        // The command's working directory is queue_directory: no shell ran "touch" there.
        await Deno.stat(`${inst.queue}/pwned`).catch(() => pwned = false);
        assertEquals(pwned, false);
        const log = await inst.log();
        assertMatch(
          log,
          /postwarden\/pipe\[\d+\]: \w+: to=<-oQx@pipe.example>, relay=mypipe, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=sent \(delivered via mypipe service\)/,
        );
      });
      await t.step("EX_NOUSER bounces with the command's output", async () => {
        await waitForLog(inst, /to=<nouser@pipe.example>.*status=bounced/, 30_000);
        assertMatch(
          await inst.log(),
          /to=<nouser@pipe.example>, relay=mypipe, .*dsn=5.1.1, status=bounced \(user unknown. Command output: no such mailbox \)/,
        );
      });
    } finally {
      await inst.stop();
    }
  },
});
