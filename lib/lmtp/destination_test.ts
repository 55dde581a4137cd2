import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { LmtpNexthopError, lmtpTcpPort, parseLmtpNexthop } from "./destination.ts";

const opts = { queueDir: "/var/spool/postfix/", defaultPort: 24 };

Deno.test("LMTP destinations", async (t) => {
  await t.step("unix: relative to queue_directory, absolute as is, case kept", () => {
    assertEquals(parseLmtpNexthop("unix:private/dovecot-lmtp", opts), [{
      kind: "unix",
      path: "private/dovecot-lmtp",
      socket: "/var/spool/postfix/private/dovecot-lmtp",
    }]);
    assertEquals(parseLmtpNexthop("UNIX:/run/Dovecot/LMTP", opts), [{
      kind: "unix",
      path: "/run/Dovecot/LMTP",
      socket: "/run/Dovecot/LMTP",
    }]);
  });
  await t.step("inet: host, host:port, [address]:port, [ipv6:...], without inet:", () => {
    const inet = (host: string, port: number) => [{ kind: "inet" as const, host, port }];
    assertEquals(parseLmtpNexthop("inet:LMTP.Example.", opts), inet("lmtp.example", 24));
    assertEquals(parseLmtpNexthop("inet:lmtp.example:2424", opts), inet("lmtp.example", 2424));
    assertEquals(parseLmtpNexthop("inet:[127.0.0.1]:24", opts), inet("127.0.0.1", 24));
    assertEquals(parseLmtpNexthop("inet:[ipv6:::1]:2424", opts), inet("::1", 2424));
    assertEquals(parseLmtpNexthop("127.0.0.1:lmtp", opts), inet("127.0.0.1", 24));
    assertEquals(
      parseLmtpNexthop("lmtp.example", { ...opts, defaultPort: 10024 }),
      inet(
        "lmtp.example",
        10024,
      ),
    );
  });
  await t.step("a list, separated by commas or white space", () => {
    assertEquals(
      parseLmtpNexthop("unix:/a, inet:[10.0.0.1]:24 inet:b", opts).map((d) => d.kind),
      ["unix", "inet", "inet"],
    );
  });
  await t.step("errors: empty, bad port, empty path", () => {
    for (
      const bad of ["", " , ", "unix:", "inet:", "inet:h:0", "inet:h:65536", "inet:h:x", "h:1:2"]
    ) {
      assertThrows(() => parseLmtpNexthop(bad, opts), LmtpNexthopError);
    }
  });
  await t.step("a bad lmtp_tcp_port matters only to a destination without a port", () => {
    const noPort = { ...opts, defaultPort: null };
    assertEquals(parseLmtpNexthop("unix:/x", noPort).length, 1);
    assertEquals(parseLmtpNexthop("inet:h:25", noPort).length, 1);
    assertThrows(() => parseLmtpNexthop("inet:h", noPort), LmtpNexthopError, "lmtp_tcp_port");
  });
  await t.step("lmtp_tcp_port: a number or the service name", () => {
    assertEquals([lmtpTcpPort("24"), lmtpTcpPort(" lmtp "), lmtpTcpPort("x"), lmtpTcpPort("0")], [
      24,
      24,
      null,
      null,
    ]);
  });
});
