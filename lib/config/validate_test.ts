import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "./config.ts";
import { validateConfig } from "./validate.ts";

Deno.test("validateConfig", async (t) => {
  await t.step("the defaults are valid", () => {
    assertEquals(validateConfig(makeConfig("/etc/x", "")), []);
  });
  await t.step("names each bad value", () => {
    const errors = validateConfig(
      makeConfig(
        "/etc/x",
        "message_size_limit = 10m\ndisable_vrfy_command = maybe\nqueue_run_delay = soon\n",
      ),
    );
    assertEquals(errors.length, 3, errors.join("\n"));
    assertMatch(errors.join("\n"), /message_size_limit/);
    assertMatch(errors.join("\n"), /disable_vrfy_command/);
    assertMatch(errors.join("\n"), /queue_run_delay/);
  });
  await t.step("expansion loops are reported, not hung on", () => {
    const errors = validateConfig(makeConfig("/etc/x", "relayhost = $relayhost\n"));
    assertEquals(errors.length, 1);
  });
});
