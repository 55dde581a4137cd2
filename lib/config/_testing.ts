/**
 * Assertion helpers for this folder's tests, shaped like Deno std's (which
 * cannot be fetched here), on top of node:assert. Test-only.
 *
 * @module
 */

import { deepStrictEqual, fail } from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

/** Asserts fn throws an instance of cls whose message includes `includes`; returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => E,
  includes = "",
): E {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof cls)) fail(`expected ${cls.name}, got ${e}`);
    if (!e.message.includes(includes)) {
      fail(`expected message to include "${includes}", got "${e.message}"`);
    }
    return e;
  }
  return fail(`expected ${cls.name} to be thrown`);
}
