/** Tests for the pipe service attributes: what parses, what is refused, the programs granted. */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { parsePipeAttributes, PipeAttributeError, pipePrograms, unescape } from "./mod.ts";

Deno.test("pipe attributes", async (t) => {
  await t.step("Postfix's maildrop example", () => {
    const a = parsePipeAttributes([
      "flags=DRXhu",
      "user=vmail",
      "argv=/usr/bin/maildrop",
      "-d",
      "${recipient}",
    ]);
    assertEquals([...a.flags].join(""), "DRXhu");
    assertEquals(a.user, "vmail");
    assertEquals(a.group, null);
    assertEquals(a.argv, ["/usr/bin/maildrop", "-d", "${recipient}"]);
    assertEquals(a.eol, "\n");
    assertEquals(a.nullSender, "MAILER-DAEMON");
    assertEquals(a.sizeLimit, 0);
  });
  await t.step("every attribute, names in any case; argv= takes the rest", () => {
    const a = parsePipeAttributes([
      "FLAGS=q.>B",
      "User=mail:list",
      "size=1000",
      "eol=\\r\\n",
      "null_sender=",
      "directory=/tmp",
      "argv=/bin/cat",
      "user=root",
      "flags=Z",
    ]);
    assertEquals(a.user, "mail");
    assertEquals(a.group, "list");
    assertEquals(a.sizeLimit, 1000);
    assertEquals(a.eol, "\r\n");
    assertEquals(a.nullSender, "");
    assertEquals(a.directory, "/tmp");
    assertEquals(a.argv, ["/bin/cat", "user=root", "flags=Z"]);
  });
  await t.step("refused: unknown names and flags, chroot=, missing user= or argv=", () => {
    const bad: [string[], string][] = [
      [["flags=Z", "user=u", "argv=/bin/true"], "unknown flag: Z"],
      [["nice=1", "user=u", "argv=/bin/true"], "unknown attribute name: nice=1"],
      [["user=u", "chroot=/x", "argv=/bin/true"], "chroot= is not supported"],
      [["argv=/bin/true"], "missing user= command-line attribute"],
      [["user=u"], "missing argv= command-line attribute"],
      [["user=u", "size=1k", "argv=/bin/true"], "bad size= value: 1k"],
      [["user=", "argv=/bin/true"], "user= attribute without a user name"],
      [["user=u", "argv=./x"], "argv=./x: the program must be"],
      [["user=u", "argv=/bin/$x"], "argv=/bin/$x: the program must be"],
      [["user=u", "directory=tmp", "argv=/bin/true"], "directory=tmp: must be an absolute path"],
      [["user=u", "argv=/bin/x", "-u", "${sasl_username}"], "${sasl_username} is not supported"],
      [["user=u", "argv=/bin/x", "$client_port"], "${client_port} is not supported"],
    ];
    for (const [args, msg] of bad) {
      assertThrows(() => parsePipeAttributes(args), PipeAttributeError, msg);
    }
  });
  await t.step("$$ before a refused name is a literal dollar", () => {
    assertEquals(
      parsePipeAttributes(["user=u", "argv=/bin/x", "$$sasl_username"]).argv[1],
      "$$sasl_username",
    );
  });
  await t.step("the programs a service may run: the path, or the name in /usr/bin and /bin", () => {
    assertEquals(pipePrograms(["user=u", "argv=/usr/lib/x/deliver", "-a"]), [
      "/usr/lib/x/deliver",
    ]);
    assertEquals(pipePrograms(["user=u", "argv=uux", "-r"]), ["/usr/bin/uux", "/bin/uux"]);
    assertEquals(pipePrograms(["argv=/bin/true"]), [], "no grant when the service cannot run");
  });
  await t.step("eol= escapes as Postfix's unescape()", () => {
    assertEquals(unescape("\\r\\n"), "\r\n");
    assertEquals(unescape("\\101\\\\\\t"), "A\\\t");
    assertEquals(unescape("x\\"), "x\\");
  });
});
