/**
 * The pipe and virtual sandboxes: the grants computed from master.cf and
 * main.cf, and what those flags let a Deno process do, measured: the pipe
 * daemon may start its argv= program and no other, the virtual daemon may
 * write under virtual_mailbox_base and nowhere else.
 */
import { sockets } from "../../tests/helpers/grants.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { type MasterService, parseMasterCf } from "../config/mod.ts";
import { daemonGrants, grantFlags, type PermissionContext } from "./mod.ts";

const SERVICES = parseMasterCf(
  "qmgr unix n - n 300 1 qmgr\n" +
    "virtual unix - n n - - virtual\n" +
    "maildrop unix - n n - - pipe flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n" +
    "uucp unix - n n - - pipe flags=Fqhu user=uucp argv=uux -r $nexthop!rmail ($recipient)\n" +
    "broken unix - n n - - pipe flags=Z user=u argv=/bin/sh\n",
).services;

function ctx(params: Record<string, string> = {}, services = SERVICES): PermissionContext {
  const all: Record<string, string> = {
    inet_interfaces: "127.0.0.1",
    export_environment: "TZ MAIL_CONFIG LANG X=y",
    virtual_mailbox_base: "/var/vmail/",
    ...params,
  };
  return { queueDir: "/q", nameservers: ["10.0.0.53"], services, param: (n) => all[n] ?? "" };
}

const svc = (name: string) => SERVICES.find((s) => s.name === name)!;

Deno.test("pipe and virtual grants", async (t) => {
  await t.step("pipe: its sockets, active/, passwd and group, its program, its env", () => {
    const g = daemonGrants(svc("maildrop"), ctx());
    assertEquals(g.run, ["/usr/bin/maildrop"]);
    assertEquals(sockets(g.write), ["/q/private/maildrop", "/q/peer/maildrop.unix.qmgr"]);
    assertEquals(sockets(g.read), [
      "/q/private/maildrop",
      "/q/peer/maildrop.unix.qmgr",
      "/q/active",
      "/etc/passwd",
      "/etc/group",
    ]);
    assertEquals(g.env, ["TZ", "MAIL_CONFIG", "LANG"]);
    assertEquals(g.sys, ["uid"]);
    assertEquals(sockets(g.net), ["unix:/q/private/maildrop", "unix:/q/peer/maildrop.unix.qmgr"]);
  });
  await t.step("pipe: a plain program name is granted in /usr/bin and /bin only", () => {
    assertEquals(daemonGrants(svc("uucp"), ctx()).run, ["/usr/bin/uux", "/bin/uux"]);
  });
  await t.step("pipe: attributes that do not parse grant no program", () => {
    assertEquals(daemonGrants(svc("broken"), ctx()).run, []);
  });
  await t.step("qmgr reaches the pipe and virtual services", () => {
    const g = daemonGrants(svc("qmgr"), ctx());
    for (const name of ["virtual", "maildrop", "uucp"]) {
      assert(g.net.includes(`unix:/q/peer/${name}.unix.qmgr`), name);
    }
  });
  await t.step("virtual: write on the base and nothing else on disk, no program", () => {
    const g = daemonGrants(svc("virtual"), ctx());
    assertEquals(sockets(g.write), [
      "/q/private/virtual",
      "/q/peer/virtual.unix.qmgr",
      "/var/vmail",
    ]);
    assertEquals(sockets(g.read), [
      "/q/private/virtual",
      "/q/peer/virtual.unix.qmgr",
      "/q/active",
      "/var/vmail",
    ]);
    assertEquals(g.run, []);
    assertEquals(g.sys, ["uid"]);
    const none = daemonGrants(svc("virtual"), ctx({ virtual_mailbox_base: "relative" }));
    assertEquals(sockets(none.write), ["/q/private/virtual", "/q/peer/virtual.unix.qmgr"]);
  });
});

/** Runs `code` under the flags of `service` (`deno run`, as master does) and returns its output. */
async function underFlags(service: MasterService, params: Record<string, string>, code: string) {
  const flags = grantFlags(daemonGrants(service, ctx(params, [service])), "/nonexistent");
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(script, code);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(script);
  return new TextDecoder().decode(out.stdout).trim() + new TextDecoder().decode(out.stderr).trim();
}

Deno.test("pipe and virtual sandboxes, measured", async (t) => {
  const tryRun = (p: string) =>
    `try { await new Deno.Command(${JSON.stringify(p)}, { args: [] }).output(); ` +
    `console.log("ran ${p}"); } catch (e) { console.log("denied ${p}: " + e.name); }`;
  await t.step("pipe runs its program and no other", async () => {
    const service = parseMasterCf("p unix - n n - - pipe user=nobody argv=/bin/true\n").services[0];
    const out = await underFlags(service, {}, tryRun("/bin/true") + tryRun("/bin/sh"));
    assert(out.includes("ran /bin/true"), out);
    assert(out.includes("denied /bin/sh: NotCapable"), out);
  });
  await t.step("virtual writes under its base only", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/base`);
    const service = parseMasterCf("virtual unix - n n - - virtual\n").services[0];
    const write = (p: string) =>
      `try { Deno.writeTextFileSync(${JSON.stringify(p)}, "x"); console.log("wrote ${p}"); } ` +
      `catch (e) { console.log("denied ${p}: " + e.name); }`;
    const out = await underFlags(
      service,
      { virtual_mailbox_base: `${dir}/base` },
      write(`${dir}/base/f`) + write(`${dir}/outside`),
    );
    assert(out.includes(`wrote ${dir}/base/f`), out);
    assert(out.includes(`denied ${dir}/outside: NotCapable`), out);
  });
});
