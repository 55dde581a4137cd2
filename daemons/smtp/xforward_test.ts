import { assertEquals } from "../../tests/helpers/assert.ts";
import { xforwardCommands } from "./xforward.ts";

Deno.test("XFORWARD commands: Postfix's two commands, offered attributes only", () => {
  const env = {
    queueId: "4ABCDEF",
    arrival: 0,
    sender: "a@b",
    attrs: {
      origin: "smtpd",
      clientName: "mail.example",
      clientAddr: "2001:db8::1",
      helo: "helo with space",
      protocol: "ESMTP",
    },
  };
  assertEquals(xforwardCommands(env, "NAME ADDR PROTO HELO SOURCE PORT IDENT"), [
    "XFORWARD NAME=mail.example ADDR=IPv6:2001:db8::1 PORT=[UNAVAILABLE]\r\n",
    "XFORWARD PROTO=ESMTP HELO=helo+20with+20space IDENT=4ABCDEF SOURCE=REMOTE\r\n",
  ]);
  assertEquals(xforwardCommands(env, "name addr"), [
    "XFORWARD NAME=mail.example ADDR=IPv6:2001:db8::1\r\n",
  ]);
  assertEquals(xforwardCommands(env, ""), []);
  // Local submission: no client; an upstream XFORWARD wins over the connection.
  assertEquals(
    xforwardCommands(
      { ...env, attrs: { origin: "pickup", protocol: "local" } },
      "NAME ADDR PROTO SOURCE",
    ),
    [
      "XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE]\r\n",
      "XFORWARD PROTO=[UNAVAILABLE] SOURCE=LOCAL\r\n",
    ],
  );
  const fwd = {
    ...env,
    attrs: {
      ...env.attrs,
      xforward: {
        name: "orig.example",
        addr: "192.0.2.1",
        port: "4711",
        protocol: "SMTP",
        source: "local" as const,
      },
    },
  };
  assertEquals(xforwardCommands(fwd, "NAME ADDR PORT PROTO HELO SOURCE"), [
    "XFORWARD NAME=orig.example ADDR=192.0.2.1 PORT=4711\r\n",
    "XFORWARD PROTO=SMTP HELO=[UNAVAILABLE] SOURCE=LOCAL\r\n",
  ]);
});
