/**
 * Assertions for tests, named like Deno std's (which cannot be fetched
 * here), built on node:assert.
 */
import assert from "node:assert/strict";

/** Deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}

/** Deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}

/** Truthiness. */
export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };

/** Substring match. */
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  assert.ok(
    actual.includes(expected),
    msg ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
  );
}

/** Regular expression match. */
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}

/** The function throws an error of the given class, optionally with a message substring. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  cls?: abstract new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e}`);
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new Error(`expected message to include ${JSON.stringify(includes)}, got ${e}`);
    }
    return e as E;
  }
  throw new Error("expected function to throw");
}

/** The promise rejects with an error of the given class. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: abstract new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e}`);
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new Error(`expected message to include ${JSON.stringify(includes)}, got ${e}`);
    }
    return e as E;
  }
  throw new Error("expected promise to reject");
}
