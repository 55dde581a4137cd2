/**
 * A whole instance started as root with local's master.cf line saying
 * unprivileged = n, as Postfix ships it: master keeps local as root,
 * local writes each mbox as its recipient through the recipient writer
 * (its sandbox allows exactly that), and an alias command runs as
 * default_privs. Mail over SMTP, checked on disk and in the log. Needs
 * root (skips loudly otherwise, fails under CI=true).
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { smtpSend, startInstance, wakeDaemon } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { haveRoot } from "../helpers/peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const NOBODY = 65534;

Deno.test("local as root delivers as each recipient", async () => {
  if (!haveRoot("local delivering as the recipient")) return;
  const spool = await Deno.makeTempDir({ prefix: "pw-spool-" });
  await Deno.chmod(spool, 0o1777);
  const out = await Deno.makeTempDir({ prefix: "pw-cmd-" });
  await Deno.chmod(out, 0o1777);
  const master = (await Deno.readTextFile(`${ROOT}/conf/master.cf`)).replace(
    /^local(\s+unix\s+)-(\s+)-(\s+)/m,
    "local$1-$2n$3",
  );
  assert(/^local\s+unix\s+-\s+n\s+/m.test(master), "master.cf local line: unprivileged = n");
  const inst = await startInstance({
    masterCf: master,
    mainCf: [
      `mail_spool_directory = ${spool}`,
      "mailbox_delivery_lock = flock, dotlock",
      `alias_maps = inline:{{runner="|id -u > ${out}/id; cat > ${out}/msg"}}`,
    ].join("\n"),
  });
  try {
    // local starts on demand (lib/service/wake.ts): start it as qmgr would.
    const pid = await wakeDaemon(inst, "local");
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    assertMatch(status, /^Uid:\s+0\s/m);
    const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
    assert(cmdline.some((a) => a.startsWith("--allow-run=")), cmdline.join(" "));
    assert(!cmdline.includes("-A") && !cmdline.includes("--allow-all"), cmdline.join(" "));

    const r = await smtpSend(inst.port, {
      from: "a@example.org",
      to: ["nobody@mx.test.example", "runner@mx.test.example"],
      body: "Subject: root test\n\nFrom here\nbody\n",
    });
    assertEquals(r.code, 250, r.replies.join("\n"));
    const log = await waitForLog(
      inst,
      (l) =>
        /to=<nobody@mx\.test\.example>.*status=sent \(delivered to mailbox\)/.test(l) &&
        /to=<runner@mx\.test\.example>.*status=sent \(delivered to command: /.test(l),
      60_000,
    );
    const st = await Deno.stat(`${spool}/nobody`);
    assertEquals([st.uid, st.gid, st.mode! & 0o777], [NOBODY, NOBODY, 0o600]);
    const text = await Deno.readTextFile(`${spool}/nobody`);
    assertMatch(text, /^From a@example\.org {2}/);
    assert(text.includes("Delivered-To: nobody@mx.test.example\n"), text);
    assert(text.includes("\n>From here\nbody\n\n"), text);
    assertEquals((await Deno.readTextFile(`${out}/id`)).trim(), `${NOBODY}`);
    assert((await Deno.readTextFile(`${out}/msg`)).includes("Subject: root test\n"));
    assert(
      !/warning|fatal|panic/.test(log.split("\n").filter((l) => l.includes("/local[")).join("\n")),
      log,
    );
  } finally {
    await inst.stop();
    await Deno.remove(spool, { recursive: true }).catch(() => {});
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});
